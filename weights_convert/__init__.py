"""PyTorch checkpoints -> integrity-checked safetensors for `ais_jax.weights` (needs torch).

Key maps written as data (`keymap`; `sequential` for torchvision's features/classifier networks,
used by `vgg16`, `vgg19` and `alexnet`; `resnet50`; `transalnet`), the checkpoint reader
(`checkpoint`) and downloads with checksums (`download`). May import `ais_jax`; the library
never imports this package.
"""

