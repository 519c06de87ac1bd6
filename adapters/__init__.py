"""Built-in format adapters: ordinary plugins, registered from ``registry.plugin_manager.DEFAULT_PLUGINS``.

- ``registry.adapters.tf2_saved_model``: the TF2 SavedModel (``saved_model.pb`` alone).
- ``registry.adapters.tf1_hub``: the TF1 Hub format (``tfhub_module.pb`` beside a SavedModel).
"""
