"""Converting a TF1 Hub module into a fine-tunable TF2 SavedModel (the Reusable SavedModel API).

    report = convert_module(Path("module_dir"), Path("converted_dir"))
    layer = registry.KerasLayer("converted_dir", trainable=True)   # or hub.KerasLayer in tf_keras

What is kept (see ``reusable`` for the object, ``convert_graph`` for the graph surgery):

- ``__call__(inputs, training=False)`` applies the call signature (``"default"``
  unless named): ``training=False`` the ``{}`` graph variant, ``training=True``
  the ``{"train"}`` variant (dropout, batch norm in training mode) with its
  UPDATE_OPS (moving averages) run on every call. It returns the signature's
  ``"default"`` output, as ``hub.Module(x)`` did, or the dict of outputs if it has none.
  Both variants read and update one set of variables.
- ``variables``; ``trainable_variables``, exactly the module's TRAINABLE_VARIABLES;
  ``regularization_losses``, the module's REGULARIZATION_LOSSES (of the
  ``{"train"}`` variant if there is one) as zero-argument functions.
- Every TF1 signature as a TF2 signature of the same name, dict in and dict out,
  computed by the ``{}`` variant; ``serving_default`` is ``default``.
- Assets (vocabularies) as ``tf.saved_model.Asset``; lookup tables as TF2
  resources initialised from them on every load.
- Partitioned variables (one TF2 variable per slice, as ``hub.Module`` had),
  ref variables (``VariableV2``), v1 ``HashTable`` ops and TF1 ``tf.cond`` /
  ``tf.while_loop`` over variables, rewritten for resource variables. Gradients flow
  through a TF1 ``tf.cond`` as through any TF2 op. A TF1 ``tf.while_loop`` has no
  gradient in a TF2 function (TensorFlow builds it from control-flow contexts that
  exist only in a TF1 graph), so the TF1 graph builds it at conversion time
  (``convert_gradient``) and a function running such a loop gets it as a saved
  custom gradient: fine-tuning through the loop follows ``hub.Module(trainable=True)``.
  Where that gradient would not be faithful (the loop's forward pass, recomputed
  by the backward function, runs a random or assigning op), the report lists the
  function (``not_differentiable``, with the reason); it computes as the module
  did, and a gradient through it fails with a message that says why.

What is refused, with a ``ConversionError`` raised before anything is written:
a module without a ``{}`` variant; a graph variant whose variables differ from
the ``{}`` variant's (one set of variables cannot serve both), where the
variant is ``{"train"}`` or any other; a ``{"train"}`` variant whose call
signature takes different inputs; a signature input or output that is not a
dense tensor (sparse and ragged tensors cannot be TF2 signature arguments), or
whose name is not a Python identifier; state other than variables and hash
tables; an op that updates a ref variable other than Assign/AssignAdd/AssignSub.
Graph variants other than ``{}`` and ``{"train"}`` with the same variables are
left out and listed in the report, as are attached messages (``attach_message``),
which a TF2 SavedModel has no place for.

Conversion needs eager execution (TF2 behaviour): ``tf.saved_model.save`` does.
"""

from __future__ import annotations

import keyword
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from registry.errors import ModeError

from registry.adapters.tf1_hub import convert_gradient, convert_graph, provenance
from registry.adapters.tf1_hub import format as module_format
from registry.adapters.tf1_hub.colocation import is_state_op
from registry.adapters.tf1_hub.errors import ConversionError
from registry.adapters.tf1_hub.format import describe_tags, node_name
from registry.adapters.tf1_hub.spec import ModuleSpec, read_module_spec

DEFAULT_TAGS: frozenset[str] = frozenset()
TRAIN_TAGS: frozenset[str] = frozenset({"train"})
_UNSUPPORTED_DTYPES = {"resource", "variant"}


@dataclass(frozen=True)
class ConversionReport:
    """What a conversion kept, and what it left out."""

    source: str
    target: str
    call_signature: str
    signatures: tuple[str, ...]
    train_variant: bool
    variables: tuple[str, ...]
    trainable_variables: tuple[str, ...]
    regularization_losses: int
    update_ops: int
    tables: tuple[str, ...]
    assets: tuple[str, ...]
    dropped_variants: tuple[str, ...] = ()
    dropped_attachments: tuple[str, ...] = ()
    #: Functions that run a TF1 tf.while_loop whose gradient the TF1 graph could not give faithfully, each
    #: "name: reason": they compute as the module did, and a gradient through them fails saying why.
    not_differentiable: tuple[str, ...] = ()

    def summary(self) -> list[str]:
        """What was kept and what was left out, one line each (for the CLI and a converted version's page)."""
        train = ("the {'train'} variant" + (f" with its {self.update_ops} update ops" if self.update_ops else "")
                 if self.train_variant else "the same graph (the module has no {'train'} variant)")
        lines = [f"converted {self.source} (TF1 Hub module) to a TF2 SavedModel (the Reusable SavedModel API)",
                 f"__call__: signature {self.call_signature!r}; training=True runs {train}",
                 f"signatures: {', '.join(self.signatures)}",
                 f"variables: {len(self.variables)} ({len(self.trainable_variables)} trainable); "
                 f"regularization losses: {self.regularization_losses}"]
        if self.tables:
            lines.append(f"tables: {', '.join(self.tables)} (assets: {', '.join(self.assets) or 'none'})")
        left_out = [f"graph variant {v}" for v in self.dropped_variants]
        left_out += [f"attached message {k!r}" for k in self.dropped_attachments]
        if left_out:
            lines.append(f"left out: {', '.join(left_out)}")
        if self.not_differentiable:
            lines.append(f"no gradient (TF1 tf.while_loop): {', '.join(self.not_differentiable)}")
        return lines


@dataclass(frozen=True)
class _Variable:
    name: str          # node name in the module graph
    dtype: int         # DataType enum of the node
    graph_shape: tuple[int, ...] | None  # the node's shape attribute (None: unknown rank)
    checkpoint_key: str
    offset: tuple[int, ...] | None  # a partitioned variable's slice: offset and shape in the full tensor
    shape: tuple[int, ...] | None
    trainable: bool


@dataclass
class _Signature:
    name: str
    input_names: list[str]                 # sorted, the TF2 signature's argument order
    input_nodes: list[str]
    specs: list                            # tf.TensorSpec per input
    outputs: dict[str, str]                # output name -> tensor name
    piece: convert_graph.GraphPiece | None = None  # set by plan_conversion, before anything reads it
    #: For a piece running a TF1 tf.while_loop: its gradient built by the TF1 graph, or why there is none.
    gradient: convert_gradient.Gradient | convert_gradient.Refused | None = None

    @property
    def extracted(self) -> convert_graph.GraphPiece:
        """The piece of the module graph this signature runs (``plan_conversion`` has extracted it)."""
        if self.piece is None:
            raise RuntimeError(f"signature {self.name!r} was planned without its graph piece")
        return self.piece


@dataclass
class _Plan:
    spec: ModuleSpec
    meta: Any                              # MetaGraphDef (TensorFlow is untyped here)
    train_meta: object | None
    variables: dict[str, _Variable]
    tables: dict[str, object]              # table node name -> NodeDef (default variant)
    signatures: dict[str, _Signature]
    call: dict[bool, _Signature]
    update_ops: list[str]
    losses: list[tuple[str, convert_graph.GraphPiece]]
    table_inits: dict[str, tuple[str, convert_graph.GraphPiece]] = field(default_factory=dict)
    dropped_variants: list[str] = field(default_factory=list)
    dropped_attachments: list[str] = field(default_factory=list)


# -- planning: every refusal happens here, before anything is written ---------------------------------


def _shape_attr(node) -> tuple[int, ...] | None:
    shape = node.attr["shape"].shape
    return None if shape.unknown_rank else tuple(d.size for d in shape.dim)


def _variables_of(meta, where: str) -> dict[str, _Variable]:
    from tensorflow.core.framework import variable_pb2

    nodes = {node.name: node for node in meta.graph_def.node}
    trainable = set()
    if "trainable_variables" in meta.collection_def:
        for value in meta.collection_def["trainable_variables"].bytes_list.value:
            trainable.add(node_name(variable_pb2.VariableDef.FromString(value).variable_name))
    result = {}
    collection = meta.collection_def.get("variables")
    for value in (collection.bytes_list.value if collection is not None else ()):
        definition = variable_pb2.VariableDef.FromString(value)
        name = node_name(definition.variable_name)
        info = definition.save_slice_info_def
        sliced = bool(info.full_name)
        result[name] = _Variable(
            name=name, dtype=nodes[name].attr["dtype"].type if name in nodes else 0,
            graph_shape=_shape_attr(nodes[name]) if name in nodes else None,
            checkpoint_key=info.full_name if sliced else name,
            offset=tuple(info.var_offset) if sliced else None, shape=tuple(info.var_shape) if sliced else None,
            trainable=name in trainable)
    for node in meta.graph_def.node:
        if convert_graph.state_kind(node) == "variable" and node.name not in result:
            raise ConversionError(f"{where}: variable node {node.name!r} is not in the GLOBAL_VARIABLES collection, "
                                  f"so its value is not in the module's checkpoint")
        if convert_graph.state_kind(node) is None and is_state_op(node.op):
            raise ConversionError(f"{where}: node {node.name!r} holds state of type {node.op}, which the converter "
                                  f"cannot carry into a TF2 SavedModel (it converts variables and hash tables)")
    return result


def _dense(info, what: str) -> None:
    import tensorflow as tf

    encoding = info.WhichOneof("encoding")
    if encoding != "name":
        kind = "sparse" if encoding == "coo_sparse" else "composite (e.g. ragged)"
        raise ConversionError(f"{what} is a {kind} tensor; a TF2 signature takes and returns dense tensors only. "
                              f"Publish a module whose signatures use dense tensors, or keep using it as a TF1 "
                              f"Hub module")
    if tf.as_dtype(info.dtype).name in _UNSUPPORTED_DTYPES:
        raise ConversionError(f"{what} has dtype {tf.as_dtype(info.dtype).name}, which a TF2 signature cannot take")


def _signature(meta, name: str, where: str) -> _Signature:
    import tensorflow as tf

    signature_def = meta.signature_def[name]
    input_names = sorted(signature_def.inputs)
    nodes = {node.name: node for node in meta.graph_def.node}
    input_nodes, specs = [], []
    for key in input_names:
        info = signature_def.inputs[key]
        what = f"{where}: input {key!r} of signature {name!r}"
        _dense(info, what)
        if not key.isidentifier() or keyword.iskeyword(key):
            raise ConversionError(f"{what}: its name is not a Python identifier, so it cannot name a TF2 "
                                  f"signature argument")
        node = node_name(info.name)
        if not info.name.endswith(":0") or nodes[node].op not in ("Placeholder", "PlaceholderWithDefault"):
            raise ConversionError(f"{what} is the tensor {info.name!r}, not a placeholder: only placeholder "
                                  f"inputs can become TF2 function arguments")
        input_nodes.append(node)
        specs.append(tf.TensorSpec(tf.TensorShape(info.tensor_shape), tf.as_dtype(info.dtype), name=key))
    outputs = {}
    for key, info in sorted(signature_def.outputs.items()):
        _dense(info, f"{where}: output {key!r} of signature {name!r}")
        outputs[key] = info.name
    return _Signature(name, input_names, input_nodes, specs, outputs)


def _collection_names(meta, key: str) -> list[str]:
    collection = meta.collection_def.get(key)
    return list(collection.node_list.value) if collection is not None else []


def _plan_gradient(meta, signature: _Signature, variables: dict[str, _Variable], what: str) -> None:
    """For a signature running a TF1 tf.while_loop: build its gradient in the TF1 graph (``convert_gradient``)."""
    piece = signature.extracted
    if not piece.while_loops:
        return
    trainable = [name for name in piece.variables if variables[name].trainable]
    signature.gradient = convert_gradient.build(meta, inputs=signature.input_nodes, outputs=signature.outputs,
                                                trainable=trainable, what=what)


def _as_called(signature: _Signature) -> _Signature:
    """A copy of ``signature`` with only the outputs ``__call__`` returns: ``"default"`` where there is one.

    An output the function returns but nobody uses would still cost every training
    step: TensorFlow 2 gives it a gradient of zeros, added to the real one where it
    feeds the returned output. (A copy: its piece and gradient are planned anew.)
    """
    outputs = {"default": signature.outputs["default"]} if "default" in signature.outputs else signature.outputs
    return replace(signature, outputs=dict(outputs), piece=None, gradient=None)


def plan_conversion(module_dir: Path, call_signature: str = "default") -> _Plan:
    """Read a module and decide every function of its TF2 form; raise ``ConversionError`` if one is impossible."""
    spec = read_module_spec(module_dir)
    where = f"module {module_dir}"
    tag_sets = spec.get_tags()
    if DEFAULT_TAGS not in tag_sets:
        raise ConversionError(f"{where} has no graph variant with tags set() (its variants are "
                              f"{', '.join(describe_tags(t) for t in tag_sets)}); a converted model's inference "
                              f"variant must be the {{}} one")
    meta = spec.meta_graph(DEFAULT_TAGS)
    variables = _variables_of(meta, f"{where}, graph variant set()")
    train_meta = spec.meta_graph(TRAIN_TAGS) if TRAIN_TAGS in tag_sets else None
    dropped = []
    for tags in tag_sets:
        if tags == DEFAULT_TAGS:
            continue
        other = _variables_of(spec.meta_graph(tags), f"{where}, graph variant {describe_tags(tags)}")
        if other != variables:
            differ = sorted(set(other) ^ set(variables)) or sorted(
                n for n in variables if other[n] != variables[n])
            raise ConversionError(
                f"{where}: graph variant {describe_tags(tags)} has variables that differ from the set() variant's "
                f"({', '.join(differ[:5])}{'...' if len(differ) > 5 else ''}); a TF2 SavedModel has one set of "
                f"variables shared by inference and training, so this module cannot be converted faithfully")
        if tags != TRAIN_TAGS:
            dropped.append(describe_tags(tags))
    if variables and not spec.checkpoint_path:
        raise ConversionError(f"{where} has variables but no variables/ checkpoint to read their values from")

    signatures = {name: _signature(meta, name, f"{where}, graph variant set()")
                  for name in sorted(meta.signature_def)}
    if call_signature not in signatures:
        raise ConversionError(f"{where} has no signature {call_signature!r} for __call__ (its signatures are "
                              f"{', '.join(signatures) or 'none'}); name one with call_signature=")
    for signature in signatures.values():
        signature.piece = convert_graph.extract(
            meta, signature.outputs.values(), inputs=signature.input_nodes,
            what=f"{where}: signature {signature.name!r}")
        _plan_gradient(meta, signature, variables, f"{where}: signature {signature.name!r}")

    call = {False: _as_called(signatures[call_signature])}
    call[False].piece = convert_graph.extract(
        meta, call[False].outputs.values(), inputs=call[False].input_nodes,
        what=f"{where}: signature {call_signature!r} as __call__ runs it")
    _plan_gradient(meta, call[False], variables, f"{where}: __call__ (signature {call_signature!r})")
    update_ops: list[str] = []
    loss_meta = meta
    if train_meta is not None:
        if call_signature not in train_meta.signature_def:
            raise ConversionError(f"{where}: the {{'train'}} variant has no signature {call_signature!r}, so "
                                  f"__call__(training=True) has nothing to run")
        train_call = _as_called(_signature(train_meta, call_signature, f"{where}, graph variant {{'train'}}"))
        if [(s.name, s.shape, s.dtype) for s in train_call.specs] != [
                (s.name, s.shape, s.dtype) for s in call[False].specs]:
            raise ConversionError(f"{where}: signature {call_signature!r} takes different inputs in the "
                                  f"{{'train'}} and set() variants, so one __call__ cannot serve both")
        update_ops = _collection_names(train_meta, "update_ops")
        train_call.piece = convert_graph.extract(
            train_meta, [*train_call.outputs.values(), *update_ops], inputs=train_call.input_nodes,
            what=f"{where}: signature {call_signature!r} of the {{'train'}} variant with its update ops")
        _plan_gradient(train_meta, train_call, variables,
                       f"{where}: signature {call_signature!r} of the {{'train'}} variant")
        call[True] = train_call
        loss_meta = train_meta
    losses = [(name, convert_graph.extract(loss_meta, [name], what=f"{where}: regularization loss {name!r}"))
              for name in _collection_names(loss_meta, "regularization_losses")]

    tables = {node.name: node for node in meta.graph_def.node if convert_graph.state_kind(node) == "table"}
    plan = _Plan(spec=spec, meta=meta, train_meta=train_meta, variables=variables, tables=tables,
                 signatures=signatures, call=call, update_ops=update_ops, losses=losses,
                 dropped_variants=dropped, dropped_attachments=spec.attached_message_keys(DEFAULT_TAGS))
    nodes = {node.name: node for node in meta.graph_def.node}
    for init in _collection_names(meta, "table_initializer"):
        op = nodes[node_name(init) if ":" in init else init]
        table = op.input[0].split(":")[0] if op.input else None
        if table is None or table not in tables:
            raise ConversionError(f"{where}: table initializer {op.name!r} does not initialize a table the "
                                  f"converter knows")
        if table in plan.table_inits:
            raise ConversionError(f"{where}: table {table!r} has two initializers")
        plan.table_inits[table] = (op.name, convert_graph.extract(
            meta, [op.name], what=f"{where}: initializer of table {table!r}"))
    return plan


# -- building and saving ------------------------------------------------------------------------------


def _variable_values(plan: _Plan) -> dict:
    import tensorflow as tf

    if not plan.variables:
        return {}
    reader = tf.train.load_checkpoint(plan.spec.checkpoint_path)
    values = {}
    for name, variable in plan.variables.items():
        value = reader.get_tensor(variable.checkpoint_key)
        if variable.offset is not None:
            assert variable.shape is not None  # a partitioned variable's offset and shape are set together
            value = value[tuple(slice(o, o + s) for o, s in zip(variable.offset, variable.shape, strict=True))]
        if variable.dtype and tf.as_dtype(variable.dtype).base_dtype != tf.as_dtype(value.dtype):
            raise ConversionError(f"variable {name!r} is {tf.as_dtype(variable.dtype).name} in the graph but "
                                  f"{value.dtype} in the checkpoint")
        values[name] = value
    return values


def _loss_of(function):
    """A zero-argument callable: ``tf.function`` would take a default argument for an input."""
    return lambda: function()["loss"]


def _build(plan: _Plan):
    import tensorflow as tf

    from registry.adapters.tf1_hub import reusable

    values = _variable_values(plan)
    state = reusable.SharedState(
        variables={name: tf.Variable(values[name], name=name, trainable=plan.variables[name].trainable)
                   for name in sorted(plan.variables)},
        tables={name: reusable.ImportedTable(node) for name, node in sorted(plan.tables.items())},
        assets={})
    pieces = [s.extracted for s in plan.signatures.values()] + [s.extracted for s in plan.call.values()]
    pieces += [p for _, p in plan.losses] + [p for _, p in plan.table_inits.values()]
    for name in sorted({a for piece in pieces for a in piece.assets}):
        node = next(n for n in plan.meta.graph_def.node if n.name == name)
        state.assets[name] = tf.saved_model.Asset(node.attr["value"].tensor.string_val[0].decode())
    for table, (init_op, piece) in sorted(plan.table_inits.items()):
        state.tables[table].set_initializer(
            reusable.wrap_piece(piece, state, [], {}, run_first=[init_op]))

    def wrap(signature: _Signature, what: str, run_first=()):
        function = reusable.wrap_piece(signature.extracted, state, signature.specs, signature.outputs, run_first)
        gradient = signature.gradient
        if isinstance(gradient, convert_gradient.Gradient):
            upstream = [s for s in signature.specs]
            outputs = function.structured_outputs
            upstream += [tf.TensorSpec(outputs[key].shape, outputs[key].dtype) for key in gradient.upstream]
            backward = reusable.wrap_piece(gradient.piece, state, upstream,
                                           {key: f"converted_gradient/{key}:0" for key in gradient.results})
            return reusable.with_graph_gradient(function, backward, gradient.upstream, gradient.results, state)
        if isinstance(gradient, convert_gradient.Refused):
            return reusable.refuse_gradient(function, what, gradient.reason)
        return function

    call_functions = {False: wrap(plan.call[False], "__call__(training=False)")}
    # Without a {"train"} variant, training=True runs the one graph there is (as hub.Module(tags={"train"})
    # could not be asked for, but hub.KerasLayer always passes training).
    call_functions[True] = (wrap(plan.call[True], "__call__(training=True)", plan.update_ops) if True in plan.call
                            else call_functions[False])
    losses = []
    for name, piece in plan.losses:
        function = reusable.wrap_piece(piece, state, [], {"loss": name})
        losses.append(_loss_of(function))
    call = plan.call[False]
    root = reusable.ConvertedModule(
        state=state, trainable=[state.variables[n] for n in sorted(plan.variables) if plan.variables[n].trainable],
        call_functions=call_functions, call_specs=call.specs,
        call_output="default" if "default" in call.outputs else None, regularization_losses=losses)
    signatures = {}
    for name, signature in plan.signatures.items():
        wrapped = wrap(signature, f"signature {name!r}")
        function = tf.function(reusable.named_signature_function(signature.input_names, wrapped),
                               input_signature=signature.specs)
        signatures[name] = function.get_concrete_function()
    if "default" in signatures:
        signatures["serving_default"] = signatures["default"]
    return root, signatures, state


def convert_module(module_dir: Path, target_dir: Path, *, call_signature: str = "default",
                   source: str | None = None) -> ConversionReport:
    """Write the TF2 SavedModel form of the TF1 Hub module at ``module_dir`` to ``target_dir`` (new or empty).

    ``source`` names the module in the report and in the record of what the model
    was converted from (``provenance``; ``Registry.convert`` passes the catalog
    handle); by default ``module_dir``. Raises ``ConversionError`` (before writing
    anything) for what cannot be converted faithfully, ``ModeError`` under
    ``disable_v2_behavior()``.
    """
    import tensorflow as tf

    module_dir, target_dir = Path(module_dir), Path(target_dir)
    if not tf.executing_eagerly():
        raise ModeError("converting a module needs eager execution (TF2 behaviour), as tf.saved_model.save does; "
                        "run it outside tf.Graph().as_default() and in a process without disable_v2_behavior() "
                        "(e.g. `model-registry convert`)")
    if target_dir.exists() and any(target_dir.iterdir()):
        raise FileExistsError(f"cannot convert into {target_dir}: it exists and is not empty")
    plan = plan_conversion(module_dir, call_signature)
    try:
        root, signatures, state = _build(plan)
    except (tf.errors.OpError, ValueError, TypeError, KeyError) as error:
        if isinstance(error, ConversionError):
            raise
        raise ConversionError(f"module {module_dir} could not be rebuilt as TF2 functions: {error}") from error
    parent = target_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    report = ConversionReport(
        source=source or str(module_dir), target=str(target_dir), call_signature=call_signature,
        signatures=tuple(sorted(signatures)), train_variant=plan.train_meta is not None,
        variables=tuple(sorted(plan.variables)),
        trainable_variables=tuple(sorted(n for n, v in plan.variables.items() if v.trainable)),
        regularization_losses=len(plan.losses), update_ops=len(plan.update_ops),
        tables=tuple(sorted(state.tables)), assets=tuple(sorted(os.path.basename(a.asset_path.numpy().decode())
                                                               for a in state.assets.values())),
        dropped_variants=tuple(plan.dropped_variants), dropped_attachments=tuple(plan.dropped_attachments),
        not_differentiable=_not_differentiable(plan))
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=parent))
    try:
        # Custom gradients saved (TensorFlow's default, stated): the TF1 while loops' gradients live there.
        tf.saved_model.save(root, str(staging), signatures=signatures,
                            options=tf.saved_model.SaveOptions(experimental_custom_gradients=True))
        provenance.write_record(staging, source=report.source, format=module_format.FORMAT_NAME,
                                summary=report.summary())
        if target_dir.exists():
            target_dir.rmdir()  # empty, checked above
        os.replace(staging, target_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def _not_differentiable(plan: _Plan) -> tuple[str, ...]:
    """Functions running a TF1 tf.while_loop whose gradient the TF1 graph could not give faithfully, and why."""
    # Without a {"train"} variant, training=True runs the {} variant's function too.
    functions = [(f"__call__(training={training})", plan.call.get(training, plan.call[False]))
                 for training in (False, True)]
    functions += [(f"signature {name!r}", s) for name, s in sorted(plan.signatures.items())]
    return tuple(f"{what}: {s.gradient.reason}" for what, s in functions
                 if isinstance(s.gradient, convert_gradient.Refused))
