"""Stage 2, networks: Flax modules with a pure ``apply``; they take parameters, never load them.

`vgg16` (the trunk up to the ablated conv5_3 maps, and the fc6 -> fc7 head), `vgg19`
(conv5_4, VGG-16's head), `alexnet` (conv5, VGG-16's head on 6x6 blocks), `resnet50` (layer4,
the global-average-pool head), all in torchvision's layout and registered by name in
`registry`; and `transalnet` (the saliency model of Aim 3). Each module says its ablated layer
and head.

May import: nothing of ais_jax (jax and flax only).
"""
