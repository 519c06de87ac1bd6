"""What both Keras layers share: load a model by handle, pick its function, call it, list its state.

Nothing here imports a Keras: the Keras 3 layer (``layer.py``) and the tf_keras
layer (``tf_keras.py``) differ only in how they hand variables and losses to
their Keras. Keeping the restored-object side in one place means both
generations call a model the same way, so a fine-tuned model behaves the same
in either.

A handle is resolved by the ``registry.Registry`` a layer is given (the default
one, reached through the public ``registry`` package, when none is): its
``prepare`` passes the matrix gate once, with the format's own Keras refusal
(``FormatAdapter.check_keras_layer``) right after it, before downloading when
the catalog knows the format. What the layer wraps comes from the format's
adapter (``FormatAdapter.keras_reusable``), so nothing here knows a format.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable

from registry.errors import SignatureError


def use_registry(registry: Any = None) -> Any:
    """``registry`` itself, or the default registry when None (through the public package, never ``registry.api``)."""
    if registry is not None:
        return registry
    import registry as _registry

    return _registry.default_registry()


def keras_layer_gate(registry: Any, *, trainable: bool, mode: str) -> Callable[[str], None]:
    """The ``accept_format`` of a layer: the format's adapter refuses what a Keras layer cannot do with it.

    It runs inside ``Registry.prepare``, so the refusal comes before anything is downloaded.
    """
    def accept(format: str) -> None:
        registry.adapters.get(format).check_keras_layer(trainable=trainable, mode=mode)

    return accept


def _accepts_keyword(function: Any, name: str) -> bool:
    """True if a tf.function (traced or restored) takes keyword argument ``name``."""
    spec = getattr(function, "function_spec", None)
    argspec = getattr(spec, "fullargspec", None)
    if argspec is None:
        return False
    return name in argspec.args or name in argspec.kwonlyargs


def unique_variables(variables) -> list:
    """Variables in first-seen order, each once (a model's lists often repeat them)."""
    seen, out = set(), []
    for v in variables:
        if v.ref() not in seen:
            seen.add(v.ref())
            out.append(v)
    return out


class LoadedModel:
    """A model restored for a Keras layer: the function to call, its variables, its regularization losses.

    ``adapter`` is the format's adapter (what ``Registry.prepare`` reported); its
    ``keras_reusable`` restores the object from ``path`` in ``mode``. ``signature``
    picks a named signature instead of ``__call__`` (the adapter's default signature
    when none is named, for formats without ``__call__``).
    """

    def __init__(self, adapter: Any, path: Path, *, mode: str, signature: str | None = None,
                 output_key: str | None = None, signature_outputs_as_dict: bool = False,
                 arguments: dict | None = None):
        import tensorflow as tf

        self.adapter = adapter
        self.path = Path(path)
        self.format = adapter.format
        self.output_key = output_key
        self.signature_outputs_as_dict = signature_outputs_as_dict
        self.arguments = dict(arguments or {})
        graph = None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
        tables_before = set(graph.get_collection(tf.compat.v1.GraphKeys.TABLE_INITIALIZERS)) if graph else set()
        reusable = adapter.keras_reusable(self.path, mode=mode)
        self.obj = reusable.obj
        #: False: the object's variables are not the layer's weights (an inference-only layer).
        self.owns_weights = reusable.owns_weights
        signature = signature or reusable.default_signature
        #: Graph mode only: ops that initialize the model's lookup tables, for the caller's session to run.
        self.table_initializers = [
            op for op in (graph.get_collection(tf.compat.v1.GraphKeys.TABLE_INITIALIZERS) if graph else [])
            if op not in tables_before]
        self.signature = signature
        if signature is not None:
            if signature not in self.obj.signatures:
                raise SignatureError(
                    f"{self.path} has no signature {signature!r}; it has: {', '.join(sorted(self.obj.signatures))}")
            self.function = self.obj.signatures[signature]
            self.takes_training = False
            if self.arguments:
                raise SignatureError("`arguments` apply to __call__ only; a signature takes only its named inputs")
        else:
            if not callable(self.obj):
                raise SignatureError(
                    f"{self.path} has no __call__; name one of its signatures instead: "
                    f"{', '.join(sorted(self.obj.signatures)) or '(none)'}")
            self.function = self.obj.__call__
            self.takes_training = _accepts_keyword(self.function, "training")

    # --- state -----------------------------------------------------------------------------

    def variables(self) -> tuple[list, list]:
        """(trainable, non-trainable) tf.Variables of the model, in a stable order.

        A reusable SavedModel lists them itself; for any other model they are the variables
        its function captures.
        """
        if self.signature is None and hasattr(self.obj, "trainable_variables") and hasattr(self.obj, "variables"):
            trainable = unique_variables(self.obj.trainable_variables)
            every = unique_variables(list(self.obj.variables) + trainable)
        else:
            concrete = getattr(self.function, "concrete_functions", None) or [self.function]
            trainable = unique_variables(v for f in concrete for v in f.trainable_variables)
            every = unique_variables(v for f in concrete for v in f.variables)
        trainable_refs = {v.ref() for v in trainable}
        return trainable, [v for v in every if v.ref() not in trainable_refs]

    def regularization_losses(self) -> list[Callable[[], Any]]:
        """The model's zero-argument regularization loss functions (empty for signatures)."""
        if self.signature is not None:
            return []
        return list(getattr(self.obj, "regularization_losses", []) or [])

    # --- calling ---------------------------------------------------------------------------

    def __call__(self, inputs: Any, training: bool = False) -> Any:
        if self.signature is not None:
            return self._select(self.function(**self._signature_kwargs(inputs)))
        kwargs = dict(self.arguments)
        if self.takes_training:
            kwargs["training"] = bool(training)
        return self._select(self.function(inputs, **kwargs), from_signature=False)

    def _signature_kwargs(self, inputs: Any) -> dict:
        names = sorted(self.function.structured_input_signature[1])
        if isinstance(inputs, dict):
            return dict(inputs)
        if len(names) != 1:
            raise SignatureError(
                f"signature {self.signature!r} takes inputs {names}: pass a dict with these keys")
        return {names[0]: inputs}

    def _select(self, outputs: Any, from_signature: bool = True) -> Any:
        if not isinstance(outputs, dict):
            if self.output_key is not None:
                raise SignatureError(f"output_key={self.output_key!r} was given, but the model returns one tensor")
            return outputs
        if self.signature_outputs_as_dict:
            return outputs
        if self.output_key is not None:
            if self.output_key not in outputs:
                raise SignatureError(
                    f"output_key {self.output_key!r} is not an output; outputs are: {', '.join(sorted(outputs))}")
            return outputs[self.output_key]
        if not from_signature:
            return outputs
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        if "default" in outputs:
            return outputs["default"]
        raise SignatureError(
            f"signature {self.signature!r} has outputs {', '.join(sorted(outputs))}: pass output_key=... "
            "or signature_outputs_as_dict=True")


_INVALID = re.compile(r"[^A-Za-z0-9_.-]")


def weight_names(variables) -> list[str]:
    """Names for Keras weights made from ``variables``: valid scope names, unique within the layer.

    Keras optimizers name their slot variables after the weight (``{path}_momentum``), so a
    SavedModel variable called ``Variable:0`` (or ``a/b:0`` twice) must not pass its name on as is.
    """
    names, taken = [], set()
    for v in variables:
        base = _INVALID.sub("_", v.name.split(":")[0]).strip("_.") or "variable"
        if not base[0].isalpha():
            base = "v_" + base
        name, n = base, 1
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        names.append(name)
    return names


class SavedModelLayerMixin:
    """What the Keras 3 and the tf_keras layer share: loading by handle, the gates, accessors and config.

    The constructor's arguments, as given, are the layer's config (all but
    ``registry``, which is no config: a layer re-created from its config uses
    the default registry), so a saved model re-creates the layer from its handle.
    """

    def _load_saved_model(self, handle, *, trainable: bool, mode: str, registry, signature, output_key,
                          signature_outputs_as_dict, arguments) -> None:
        """Resolve ``handle`` through ``registry`` (default: the default registry) and load it.

        ``Registry.prepare`` passes the matrix gate once, with the format's own refusal
        of what a Keras layer cannot do with it right after it: before anything is
        downloaded when the catalog knows the format, else as soon as the bytes are local.
        """
        self.handle = os.fspath(handle)
        self._options = dict(signature=signature, output_key=output_key,
                             signature_outputs_as_dict=signature_outputs_as_dict, arguments=arguments)
        registry = use_registry(registry)
        prepared = registry.prepare(handle, "fine_tune" if trainable else "load", mode,
                                    accept_format=keras_layer_gate(registry, trainable=trainable, mode=mode))
        self._loaded = LoadedModel(prepared.adapter, prepared.path, mode=prepared.mode, signature=signature,
                                   output_key=output_key, signature_outputs_as_dict=signature_outputs_as_dict,
                                   arguments=arguments)
        # Tracked, so a model saved around the layer keeps the SavedModel's tables and assets.
        self._restored = self._loaded.obj

    @property
    def loaded_object(self):
        """The object the format's adapter restored; its variables are this layer's weights (if it owns them)."""
        return self._loaded.obj

    @property
    def model_path(self):
        """The local directory the layer was loaded from."""
        return self._loaded.path

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()  # type: ignore[misc]  # the Keras Layer after this mixin in the MRO has it
        options = dict(self._options)
        options["arguments"] = dict(options["arguments"]) if options["arguments"] else None
        config.update(handle=self.handle, **options)
        return config
