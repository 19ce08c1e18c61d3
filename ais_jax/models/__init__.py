"""Stage 2, networks: Flax modules with a pure ``apply``; they take parameters, never load them.

`vgg16` (the trunk up to the ablated conv5_3 maps, and the fc6 -> fc7 head) and
`transalnet` (the saliency model of Aim 3). Each module says its ablated layer and head.

May import: nothing of ais_jax (jax and flax only).
"""
