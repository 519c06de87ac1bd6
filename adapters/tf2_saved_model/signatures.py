"""Reading a TF2 SavedModel's signatures and call signature for the catalog."""

from __future__ import annotations


from registry.adapter import SignatureInfo, TensorInfo


def tensor_info_from_proto(info) -> TensorInfo:
    """A TensorInfo proto (as in a SignatureDef) as a catalog ``TensorInfo``."""
    import tensorflow as tf

    dtype = tf.dtypes.as_dtype(info.dtype).name
    kind = "sparse" if info.WhichOneof("encoding") == "coo_sparse" else (
        "ragged" if info.WhichOneof("encoding") == "composite_tensor" else "dense")
    shape = info.tensor_shape
    dims = None if shape.unknown_rank else tuple(None if d.size < 0 else d.size for d in shape.dim)
    return TensorInfo(dtype=dtype, shape=dims, kind=kind)


def signature_defs(meta_graph, tags=frozenset()) -> list[SignatureInfo]:
    out = []
    for name in sorted(meta_graph.signature_def):
        sig = meta_graph.signature_def[name]
        if name.startswith("__"):  # e.g. __saved_model_init_op is bookkeeping, not an interface
            continue
        out.append(SignatureInfo(
            name=name,
            inputs={k: tensor_info_from_proto(v) for k, v in sorted(sig.inputs.items())},
            outputs={k: tensor_info_from_proto(v) for k, v in sorted(sig.outputs.items())},
            tags=frozenset(tags),
        ))
    return out


def spec_to_info(spec) -> TensorInfo:
    import tensorflow as tf

    if isinstance(spec, tf.SparseTensorSpec):
        kind = "sparse"
    elif isinstance(spec, tf.RaggedTensorSpec):
        kind = "ragged"
    else:
        kind = "dense"
    shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
    return TensorInfo(dtype=spec.dtype.name, shape=shape, kind=kind)


def call_signature(obj) -> tuple[SignatureInfo | None, bool]:
    """The restored object's ``__call__`` as a signature named ``__call__``, and whether it takes ``training``."""
    import tensorflow as tf

    call = getattr(obj, "__call__", None)
    concrete = list(getattr(call, "concrete_functions", []) or [])
    if not concrete:
        return None, False
    # Prefer the trace without a training flag, or training=False: it is the inference interface.
    concrete.sort(key=lambda f: ("training" in f.structured_input_signature[1]
                                 and f.structured_input_signature[1]["training"] is not False))
    fn = concrete[0]
    takes_training = any("training" in f.structured_input_signature[1] or
                         len(f.structured_input_signature[0]) > 1 for f in concrete)
    args, kwargs = fn.structured_input_signature
    inputs = {}
    flat_args = [a for a in args if isinstance(a, tf.TypeSpec)]
    if len(flat_args) == 1 and not kwargs:
        inputs[getattr(flat_args[0], "name", None) or "inputs"] = spec_to_info(flat_args[0])
    else:
        for i, spec in enumerate(args):
            if isinstance(spec, dict):
                inputs.update({k: spec_to_info(v) for k, v in spec.items() if isinstance(v, tf.TypeSpec)})
            elif isinstance(spec, tf.TypeSpec):
                inputs[getattr(spec, "name", None) or f"input_{i}"] = spec_to_info(spec)
        for k, v in kwargs.items():
            if isinstance(v, tf.TypeSpec):
                inputs[k] = spec_to_info(v)
    structured = fn.structured_outputs
    # A restored function's outputs are TypeSpecs; a freshly traced one's are symbolic tensors.
    def as_info(v):
        return spec_to_info(v if isinstance(v, tf.TypeSpec) else tf.type_spec_from_value(v))

    if isinstance(structured, dict):
        outputs = {k: as_info(v) for k, v in structured.items()}
    elif isinstance(structured, (tf.Tensor, tf.SparseTensor, tf.RaggedTensor, tf.TypeSpec)):
        outputs = {"default": as_info(structured)}
    else:
        outputs = {}
    return SignatureInfo(name="__call__", inputs=inputs, outputs=outputs), takes_training
