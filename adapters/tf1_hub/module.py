"""``Module``: a TF1 Hub module built into the current graph (tensorflow_hub 0.15's ``hub.Module``).

    with tf.Graph().as_default():
        m = registry.Module("vision/feature-vector/2", trainable=True, tags={"train"})
        features = m(images)                      # the "default" signature, its "default" output
        outputs = m(images, as_dict=True)         # every output
        with tf.compat.v1.Session() as s:
            s.run([tf.compat.v1.global_variables_initializer(), tf.compat.v1.tables_initializer()])

Constructing a Module adds the graph variant's state (variables, tables) once
under a fresh scope; each call adds compute ops that share it.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import tensorflow as tf

from registry.modes import current_mode, require_mode

from registry.adapters.tf1_hub import instantiate, writer
from registry.adapters.tf1_hub.errors import SignatureTypeError
from registry.adapters.tf1_hub.format import FORMAT_NAME
from registry.adapters.tf1_hub.signatures import ParsedTensorInfo, convert_inputs
from registry.adapters.tf1_hub.spec import ModuleSpec, read_module_spec, require_tf1_hub, use_registry

tf1 = tf.compat.v1


class Module:
    """A module instantiated in the current TF1 graph.

    Args:
        spec: a ``ModuleSpec`` or a handle (catalog handle, URL or local path).
        trainable: put the module's variables in TRAINABLE_VARIABLES and its
            regularization losses in REGULARIZATION_LOSSES; update ops of each
            call go to UPDATE_OPS.
        name: the scope to build the state in (made unique if taken).
        tags: the graph variant, e.g. ``{"train"}``; the default is the empty set.
        registry: the ``registry.Registry`` that resolves a handle and holds the
            matrix gate; the default registry when None.

    The matrix gate runs once: for a handle inside ``Registry.prepare`` (before
    anything is downloaded when the catalog knows the format), for a spec here.
    """

    def __init__(self, spec, trainable: bool = False, name: str = "module", tags=None, *, registry=None):
        if not isinstance(spec, (ModuleSpec, str, os.PathLike)):
            raise TypeError(f"expected a ModuleSpec or a handle, not {type(spec).__name__}")
        reg = use_registry(registry)
        operation = "fine_tune" if trainable else "load"
        if current_mode() != "tf1":
            # A Module builds into a TF1 graph. Called eagerly, the matrix's refusal of this operation in
            # mode tf2 comes first where there is one (it names the alternative); else it is a mode error.
            reg.check(FORMAT_NAME, operation, "tf2")
            require_mode("tf1")
        if isinstance(spec, ModuleSpec):
            reg.check(FORMAT_NAME, operation, "tf1")
        else:
            prepared = reg.prepare(spec, operation, "tf1", accept_format=require_tf1_hub(spec, "registry.Module"))
            spec = read_module_spec(prepared.path)
        self._build(spec, trainable, name, tags)

    @classmethod
    def from_gated_spec(cls, spec: ModuleSpec, trainable: bool = False, name: str = "module",
                        tags=None) -> "Module":
        """Build ``spec`` without passing the matrix gate again: for callers that passed it already.

        The adapter's ``load``, ``fine_tune`` and ``create`` use this: a ``Registry`` runs
        them only after its gate (``prepare``, or publish's create check) has passed.
        """
        if not isinstance(spec, ModuleSpec):
            raise TypeError(f"expected a ModuleSpec, not {type(spec).__name__}")
        module = cls.__new__(cls)
        module._build(spec, trainable, name, tags)
        return module

    def _build(self, spec: ModuleSpec, trainable, name: str, tags) -> None:
        require_mode("tf1")
        self._graph = tf1.get_default_graph()
        self._spec: ModuleSpec = spec
        self._trainable = bool(trainable)
        self._tags = frozenset(tags or ())
        self._meta_graph = self._spec.meta_graph(self._tags)
        # In a function replicated for TPU the state goes to the outer graph, initialised once there.
        with tf.init_scope() if instantiate.in_tpu_function() else contextlib.nullcontext():
            self._state = instantiate.create_state(
                self._meta_graph, name, trainable=self._trainable, checkpoint_path=self._spec.checkpoint_path)
        self._name = self._state.scope.rsplit("/", 1)[-1]

    def __repr__(self):
        return f"<Module {self._state.scope!r} tags={sorted(self._tags)} trainable={self._trainable}>"

    def __call__(self, inputs=None, _sentinel=None, signature: str | None = None, as_dict: bool | None = None):
        """Apply a signature (default: ``"default"``) to ``inputs``: one tensor, a dict, or None.

        Returns the signature's ``default`` output, or all outputs as a dict when ``as_dict=True``.
        """
        if _sentinel is not None:
            raise TypeError("Module.__call__ takes the inputs as its only positional argument; "
                            "pass signature= and as_dict= by keyword")
        if self._graph is not tf1.get_default_graph():
            raise RuntimeError("Module must be applied in the graph it was instantiated for: make that graph "
                               "the default (`with graph.as_default():`) or build another Module in this one")
        signature = signature or "default"
        signature_def = self._spec.signature_def(signature, self._tags)
        tensors = convert_inputs(inputs, self.get_input_info_dict(signature), signature)
        outputs = instantiate.apply_signature(
            self._meta_graph, signature_def, self._state, tensors,
            name=f"{self._name}_apply_{signature.replace(':', '_')}", trainable=self._trainable)
        if as_dict:
            return outputs
        if "default" not in outputs:
            raise SignatureTypeError(
                f"There is no output named 'default'. Use as_dict=True (signature {signature!r} has outputs "
                f"{', '.join(sorted(outputs))})")
        return outputs["default"]

    # -- what the module offers ------------------------------------------------------------------

    @property
    def spec(self) -> ModuleSpec:
        return self._spec

    @property
    def tags(self) -> frozenset[str]:
        return self._tags

    def get_signature_names(self) -> list[str]:
        return self._spec.get_signature_names(tags=self._tags)

    def get_input_info_dict(self, signature: str | None = None) -> dict[str, ParsedTensorInfo]:
        return self._spec.get_input_info_dict(signature, tags=self._tags)

    def get_output_info_dict(self, signature: str | None = None) -> dict[str, ParsedTensorInfo]:
        return self._spec.get_output_info_dict(signature, tags=self._tags)

    def get_attached_message(self, key: str, message_type, required: bool = False):
        return self._spec.get_attached_message(key, message_type, tags=self._tags, required=required)

    @property
    def variable_map(self) -> dict[str, Any]:
        """Variable name in the module -> ``tf.Variable`` (a list of slices for a partitioned variable).

        The keys do not depend on the scope the module was built in, so this map
        serves as the ``assignment_map`` of ``tf.compat.v1.train.init_from_checkpoint``.
        """
        return dict(self._state.variable_map)

    @property
    def variables(self) -> list:
        result = []
        for _, value in sorted(self._state.variable_map.items()):
            result.extend(value if isinstance(value, list) else [value])
        return result

    # -- writing ---------------------------------------------------------------------------------

    def export(self, path, session) -> None:
        """Write the module to ``path`` with the variable values ``session`` holds (e.g. after fine-tuning)."""
        if self._graph is not tf1.get_default_graph():
            raise RuntimeError("default graph differs from the graph where the module was instantiated: call "
                               "export() inside `with graph.as_default():`")
        if session.graph is not self._graph:
            raise RuntimeError("session graph differs from the graph where the module was instantiated: pass a "
                               "session of that graph")
        writer.write_module(path, self._spec.meta_graphs(), self._state.variable_map, session)
