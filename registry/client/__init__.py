"""Client mode: the registry's API over a registry server (``MODEL_REGISTRY_URL``).

With the variable set, ``registry.Registry`` uses ``HttpCatalog`` for every
catalog read and write and ``UploadingPublisher`` to publish, and downloads
archives from the server's model URLs into the usual content-addressed cache
(hash-verified, atomic; offline works for what was fetched before). The client
never needs the catalog database's or the bucket's credentials — only the
server's URL, and a token for writes.
"""
