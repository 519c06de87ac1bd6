"""Signature tensors: describing them, checking inputs against them, wiring them into graphs.

A SignatureDef names each input and output by ``TensorInfo``: a dense tensor
(``name``), a sparse one (``coo_sparse``: values, indices and dense_shape
tensors) or another composite such as a ragged tensor (``composite_tensor``:
a type spec and its component tensors). The functions here translate between
those protos and the tensors of the graph a module is applied in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import tensorflow as tf

from registry.adapters.tf1_hub.errors import SignatureTypeError


@dataclass(frozen=True)
class ParsedTensorInfo:
    """What a signature expects or gives for one name: dtype, static shape, and dense/sparse/composite."""

    dtype: tf.DType
    shape: tf.TensorShape
    is_sparse: bool = False
    type_spec: Any = None  # a tf.TypeSpec for composite tensors other than sparse

    @property
    def is_composite(self) -> bool:
        return self.is_sparse or self.type_spec is not None

    @property
    def kind(self) -> str:
        if self.is_sparse:
            return "sparse"
        if self.type_spec is not None:
            return "ragged" if isinstance(self.type_spec, tf.RaggedTensorSpec) else "composite"
        return "dense"

    def get_shape(self) -> tf.TensorShape:
        """The static shape (the name hub.ParsedTensorInfo used)."""
        return self.shape

    def __repr__(self):
        kind = "" if self.kind == "dense" else f", {self.kind}"
        return f"<ParsedTensorInfo {self.dtype.name} {self.shape}{kind}>"


def _decode_type_spec(type_spec_proto):
    from tensorflow.core.protobuf import struct_pb2
    from tensorflow.python.saved_model import nested_structure_coder

    value = struct_pb2.StructuredValue(type_spec_value=type_spec_proto)
    return nested_structure_coder.decode_proto(value)


def parse_tensor_info(info) -> ParsedTensorInfo:
    encoding = info.WhichOneof("encoding")
    dtype = tf.as_dtype(info.dtype) if info.dtype else None
    if encoding == "composite_tensor":
        spec = _decode_type_spec(info.composite_tensor.type_spec)
        if isinstance(spec, tf.SparseTensorSpec):
            return ParsedTensorInfo(spec.dtype, spec.shape, is_sparse=True)
        return ParsedTensorInfo(getattr(spec, "dtype", dtype), getattr(spec, "shape", tf.TensorShape(None)),
                                type_spec=spec)
    return ParsedTensorInfo(dtype, tf.TensorShape(info.tensor_shape), is_sparse=encoding == "coo_sparse")


def parse_tensor_info_map(info_map) -> dict[str, ParsedTensorInfo]:
    return {key: parse_tensor_info(info) for key, info in info_map.items()}


def _convert_one(name: str, value, target: ParsedTensorInfo):
    if target.is_sparse:
        if isinstance(value, tf.compat.v1.SparseTensorValue):
            value = tf.SparseTensor.from_value(value)
        if not isinstance(value, tf.SparseTensor):
            raise SignatureTypeError(f"input {name!r} must be a tf.SparseTensor (the signature takes a sparse "
                                     f"{target.dtype.name} tensor), not {type(value).__name__}")
        tensor = value
    elif target.type_spec is not None:
        if not isinstance(value, tf.__internal__.CompositeTensor):
            value = tf.ragged.constant(value, dtype=target.dtype) if isinstance(
                target.type_spec, tf.RaggedTensorSpec) else value
        if not target.type_spec.is_compatible_with(value):
            raise SignatureTypeError(f"input {name!r} is {value!r}, not compatible with {target.type_spec}")
        return value
    else:
        if isinstance(value, tf.SparseTensor):
            raise SignatureTypeError(f"input {name!r} is a tf.SparseTensor, but the signature takes a dense tensor")
        try:
            tensor = tf.convert_to_tensor(value, dtype=target.dtype)
        except (TypeError, ValueError) as e:
            raise SignatureTypeError(f"input {name!r} cannot be converted to {target.dtype.name}: {e}") from None
    if tensor.dtype != target.dtype:
        raise SignatureTypeError(f"input {name!r} has dtype {tensor.dtype.name}, the signature expects "
                                 f"{target.dtype.name}")
    if not tensor.shape.is_compatible_with(target.shape):
        raise SignatureTypeError(f"input {name!r} has shape {tensor.shape}, not compatible with the signature's "
                                 f"{target.shape}")
    return tensor


def bind_inputs(inputs, names, signature: str) -> dict[str, Any]:
    """``inputs`` (one value, a dict, or None) as a dict over exactly the signature's input ``names``.

    A single value goes to the signature's only input, whatever its name, as in
    tensorflow_hub 0.15; the messages begin as its did.
    """
    names = sorted(names)
    if inputs is None:
        inputs = {}
    elif not isinstance(inputs, dict):
        if len(names) == 1:
            inputs = {names[0]: inputs}
        elif not names:
            raise SignatureTypeError(f"Signature expects no inputs. Call signature {signature!r} without inputs")
        else:
            raise SignatureTypeError(f"Signature expects multiple inputs. Use a dict: signature {signature!r} "
                                     f"takes {', '.join(names)}")
    missing = sorted(set(names) - set(inputs))
    extra = sorted(set(inputs) - set(names))
    if missing or extra:
        raise SignatureTypeError(f"Cannot convert dict_inputs: missing {missing}, extra given {extra} "
                                 f"(signature {signature!r} takes {', '.join(names) or 'no inputs'})")
    return inputs


def convert_inputs(inputs, info: dict[str, ParsedTensorInfo], signature: str) -> dict[str, Any]:
    """Turn ``inputs`` (one value, a dict, or None) into tensors matching the signature's inputs."""
    inputs = bind_inputs(inputs, info, signature)
    return {name: _convert_one(name, inputs[name], info[name]) for name in sorted(info)}


def build_input_map(input_infos, tensors: dict[str, Any]) -> dict[str, tf.Tensor]:
    """Map the tensor names a signature's inputs have inside the module graph to the given tensors."""
    result = {}
    for name, info in input_infos.items():
        value = tensors[name]
        encoding = info.WhichOneof("encoding")
        if encoding == "coo_sparse":
            result[info.coo_sparse.values_tensor_name] = value.values
            result[info.coo_sparse.indices_tensor_name] = value.indices
            result[info.coo_sparse.dense_shape_tensor_name] = value.dense_shape
        elif encoding == "composite_tensor":
            # convert_inputs checked the value against the signature's type spec: one tensor per component.
            components = tf.nest.flatten(value, expand_composites=True)
            for component_info, tensor in zip(info.composite_tensor.components, components, strict=True):
                result[component_info.name] = tensor
        else:
            result[info.name] = value
    return result


def build_output_map(output_infos, get_tensor: Callable[[str], tf.Tensor]) -> dict[str, Any]:
    """Rebuild a signature's outputs from the tensors of an applied graph."""
    result = {}
    for name, info in output_infos.items():
        encoding = info.WhichOneof("encoding")
        if encoding == "coo_sparse":
            result[name] = tf.SparseTensor(
                indices=get_tensor(info.coo_sparse.indices_tensor_name),
                values=get_tensor(info.coo_sparse.values_tensor_name),
                dense_shape=get_tensor(info.coo_sparse.dense_shape_tensor_name))
        elif encoding == "composite_tensor":
            spec = _decode_type_spec(info.composite_tensor.type_spec)
            components = [get_tensor(c.name) for c in info.composite_tensor.components]
            result[name] = tf.nest.pack_sequence_as(spec, components, expand_composites=True)
        else:
            result[name] = get_tensor(info.name)
    return result


def tensor_names(infos) -> list[str]:
    """Every graph tensor name a map of TensorInfos refers to."""
    names = []
    for info in infos.values():
        encoding = info.WhichOneof("encoding")
        if encoding == "coo_sparse":
            names += [info.coo_sparse.values_tensor_name, info.coo_sparse.indices_tensor_name,
                      info.coo_sparse.dense_shape_tensor_name]
        elif encoding == "composite_tensor":
            names += [c.name for c in info.composite_tensor.components]
        else:
            names.append(info.name)
    return names
