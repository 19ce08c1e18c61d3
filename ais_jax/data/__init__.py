"""Stage 1, images: image files -> normalised inputs, and datasets with their human matrices.

Folders of images (`files`), the Peterson et al. (2018) layouts (`datasets`, `release`),
plain datasets with a matrix file, rsatoolbox RDM files read as human matrices (`rdm_files`),
preprocessing (`images`) and resizing (`resize`). TensorFlow Datasets (`tfds`, and the builders
in `tfds_builders`; the optional ``tfds`` extra) are never imported from here.

May import: `ais_jax.storage` only (and the standard scientific stack). Nothing in the
pipeline below it.
"""

from ais_jax.data.datasets import (
    KINDS,
    PETERSON_CATEGORIES,
    PETERSON_DISPLAY_NAMES,
    Dataset,
    load_peterson,
    load_plain,
    read_matrix,
    validate_matrix,
)
from ais_jax.data.files import IMAGE_IDS_FILE, IMAGE_SUFFIXES, list_images, scan_images
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
    "IMAGE_IDS_FILE",
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
