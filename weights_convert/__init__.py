"""PyTorch checkpoints -> integrity-checked safetensors for `ais_jax.weights` (needs torch).

Key maps written as data (`keymap`, `vgg16`, `transalnet`), the checkpoint reader
(`checkpoint`) and downloads with checksums (`download`). May import `ais_jax`; the library
never imports this package.
"""

