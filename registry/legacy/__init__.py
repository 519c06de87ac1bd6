"""What a team brings from TF Hub and Kaggle: legacy model handles and tensorflow_hub's cache layout.

``registry.legacy.handles`` decides what a tfhub.dev, bucket or Kaggle handle is, in one canonical form per
family; ``registry.legacy.tfhub_cache`` is the ``TFHUB_CACHE_DIR`` layout, declared once for every reader and
writer of it (the resolver, ``export tfhub-cache``, ``import tfhub-cache``). Nothing here imports TensorFlow,
a database library or the network.
"""

from registry.legacy.handles import is_legacy_handle, normalise_legacy_handle, spellings

__all__ = ["is_legacy_handle", "normalise_legacy_handle", "spellings"]
