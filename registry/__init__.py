"""A model registry for TensorFlow models: load, fine-tune and create models by string handle.

    import registry
    model = registry.load("vision/mobilenet-tiny/3", mode="tf2")

Names are imported lazily, so ``import registry`` (and the CLI) stays fast and
TensorFlow is imported only when a model is touched.
"""

from __future__ import annotations

import importlib

from registry.errors import (  # noqa: F401  (errors are cheap and always wanted)
    ArtifactError,
    ArtifactNotFound,
    CatalogBusy,
    CatalogError,
    CatalogReadOnly,
    CatalogUnavailable,
    ConfigError,
    ConversionError,
    FormatError,
    HandleError,
    IntegrityError,
    ModeError,
    ModelNotFound,
    OfflineError,
    PluginError,
    RegistryError,
    SchemaError,
    SignatureError,
    UnknownMode,
    UnsafeArchive,
    UnsupportedConversion,
    UnsupportedOperation,
    VersionNotFound,
)

__version__ = "0.1.0"

# public name -> "module:attribute"
_LAZY = {
    # pluggy is imported when plugins are, not by a process that only resolves a cached handle
    "hookimpl": "registry.hookspecs:hookimpl",
    "Registry": "registry.api:Registry",
    "default_registry": "registry.api:default_registry",
    "publish": "registry.api:publish",
    "load": "registry.api:load",
    "fine_tune": "registry.api:fine_tune",
    "convert": "registry.api:convert",
    "resolve": "registry.api:resolve",
    "get_version": "registry.api:get_version",
    "list_models": "registry.api:list_models",
    "list_versions": "registry.api:list_versions",
    "set_alias": "registry.api:set_alias",
    "remove_alias": "registry.api:remove_alias",
    "delete_version": "registry.api:delete_version",
    "lineage": "registry.api:lineage",
    "alias_history": "registry.api:alias_history",
    "set_card": "registry.api:set_card",
    "audit": "registry.api:audit",
    "compatibility_matrix": "registry.api:compatibility_matrix",
    "search": "registry.api:search",
    "find": "registry.api:find",
    "interchangeable": "registry.api:interchangeable",
    "add_legacy_handles": "registry.api:add_legacy_handles",
    "remove_legacy_handles": "registry.api:remove_legacy_handles",
    "find_legacy_handle": "registry.api:find_legacy_handle",
    "list_legacy_handles": "registry.api:list_legacy_handles",
    "FormatAdapter": "registry.adapter:FormatAdapter",
    "ArtifactInfo": "registry.adapter:ArtifactInfo",
    "SignatureInfo": "registry.adapter:SignatureInfo",
    "TensorInfo": "registry.adapter:TensorInfo",
    "Cell": "registry.matrix:Cell",
    "KerasLayer": "registry.keras.layer:KerasLayer",
    "tf_keras": "registry.keras:tf_keras",
    # The TF1 Hub format (tensorflow_hub 0.15's hub.Module API)
    "Module": "registry.adapters.tf1_hub.module:Module",
    "ModuleSpec": "registry.adapters.tf1_hub.spec:ModuleSpec",
    "load_module_spec": "registry.adapters.tf1_hub.spec:load_module_spec",
    "create_module_spec": "registry.adapters.tf1_hub.export:create_module_spec",
    "eval_function_for_module": "registry.adapters.tf1_hub.evaluate:eval_function_for_module",
    "add_signature": "registry.adapters.tf1_hub.export:add_signature",
    "attach_message": "registry.adapters.tf1_hub.export:attach_message",
    "ImageModuleInfo": "registry.adapters.tf1_hub.image:ImageModuleInfo",
    "attach_image_module_info": "registry.adapters.tf1_hub.image:attach_image_module_info",
    "get_expected_image_size": "registry.adapters.tf1_hub.image:get_expected_image_size",
    "get_num_image_channels": "registry.adapters.tf1_hub.image:get_num_image_channels",
}


def __getattr__(name: str):
    try:
        target = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'registry' has no attribute {name!r}") from None
    module_name, attr = target.split(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
