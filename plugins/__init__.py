"""Built-in feature plugins: ordinary plugins, registered from ``registry.plugin_manager.DEFAULT_PLUGINS``.

Format adapters live in ``adapters/``; the plugins here add behaviour on top of
any format through the same hooks a third-party package would implement.

- ``registry.plugins.signatures``: the common signatures (image feature vector, image
  classification, text embedding, the reusable SavedModel API), checked on
  publish and recorded in the catalog as the version's tasks.
"""
