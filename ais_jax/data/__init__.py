"""Stage 1 of the pipeline: image files -> normalised inputs, and datasets with human matrices."""

from ais_jax.data.datasets import (
    IMAGE_SUFFIXES,
    KINDS,
    PETERSON_CATEGORIES,
    PETERSON_DISPLAY_NAMES,
    Dataset,
    list_images,
    load_peterson,
    load_plain,
    read_matrix,
    scan_images,
    validate_matrix,
)
from ais_jax.data.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INPUT_SIZE,
    PREPROCESS_VERSION,
    load_batch,
    open_rgb,
    preprocess,
    resize_shorter,
    resized_shape,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INPUT_SIZE",
    "KINDS",
    "PETERSON_CATEGORIES",
    "PETERSON_DISPLAY_NAMES",
    "PREPROCESS_VERSION",
    "Dataset",
    "list_images",
    "load_batch",
    "load_peterson",
    "load_plain",
    "open_rgb",
    "preprocess",
    "read_matrix",
    "resize_shorter",
    "resized_shape",
    "scan_images",
    "validate_matrix",
]
