"""The part of the SavedModel schema that inspection reads, defined here so that reading it needs no TensorFlow.

Importing any ``tensorflow`` module (its generated ``_pb2`` classes included)
imports all of TensorFlow, about 540 MB of memory before a byte of the model is
read. Publishing needs only the graph variants' tags, the signatures and the
object graph's call signature, so this module builds those messages from
descriptors at import time, as ``registry.adapters.tf1_hub.protos`` does for the TF1 Hub
messages: TensorFlow's field numbers and wire types (``saved_model.proto``,
``meta_graph.proto``, ``saved_object_graph.proto``, ``struct.proto``;
``tests/test_tf2_inspection.py`` compares them with TensorFlow's descriptors).
Whatever is not declared here (graph_def, the function library, checkpoint
details) is kept as unknown fields, unparsed.

The messages live in a private pool under the package ``registry_saved_model``,
so they never clash with TensorFlow's own classes when both are loaded. They
are for reading: nothing written with them is a whole SavedModel.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "registry_saved_model"

_F = descriptor_pb2.FieldDescriptorProto
MESSAGE, STRING, BOOL, ENUM = _F.TYPE_MESSAGE, _F.TYPE_STRING, _F.TYPE_BOOL, _F.TYPE_ENUM
INT32, INT64, SINT64, DOUBLE = _F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_SINT64, _F.TYPE_DOUBLE

#: ``tensorflow.DataType`` values 1, 2, ... in order: (enum name without ``DT_``, TensorFlow's dtype name).
#: A reference type is the value plus 100, named with ``_REF`` / ``_ref``.
_DATA_TYPES = (
    ("FLOAT", "float32"), ("DOUBLE", "float64"), ("INT32", "int32"), ("UINT8", "uint8"), ("INT16", "int16"),
    ("INT8", "int8"), ("STRING", "string"), ("COMPLEX64", "complex64"), ("INT64", "int64"), ("BOOL", "bool"),
    ("QINT8", "qint8"), ("QUINT8", "quint8"), ("QINT32", "qint32"), ("BFLOAT16", "bfloat16"),
    ("QINT16", "qint16"), ("QUINT16", "quint16"), ("UINT16", "uint16"), ("COMPLEX128", "complex128"),
    ("HALF", "float16"), ("RESOURCE", "resource"), ("VARIANT", "variant"), ("UINT32", "uint32"),
    ("UINT64", "uint64"), ("FLOAT8_E5M2", "float8_e5m2"), ("FLOAT8_E4M3FN", "float8_e4m3fn"),
    ("FLOAT8_E4M3FNUZ", "float8_e4m3fnuz"), ("FLOAT8_E4M3B11FNUZ", "float8_e4m3b11fnuz"),
    ("FLOAT8_E5M2FNUZ", "float8_e5m2fnuz"), ("INT4", "int4"), ("UINT4", "uint4"), ("INT2", "int2"),
    ("UINT2", "uint2"), ("FLOAT4_E2M1FN", "float4_e2m1fn"),
)
_REFERENCE_TYPES = ((0, "", ""), (100, "_REF", "_ref"))

#: ``DataType`` enum value -> TensorFlow's dtype name, as ``tf.dtypes.as_dtype(value).name`` gives it.
DTYPE_NAMES: dict[int, str] = {
    number + offset: name + suffix
    for offset, _, suffix in _REFERENCE_TYPES
    for number, (_, name) in enumerate(_DATA_TYPES, start=1)
}

#: ``TypeSpecProto.TypeSpecClass``: the composite tensor types TensorFlow serializes itself.
TYPE_SPEC_CLASSES = (
    ("UNKNOWN", 0), ("SPARSE_TENSOR_SPEC", 1), ("INDEXED_SLICES_SPEC", 2), ("RAGGED_TENSOR_SPEC", 3),
    ("TENSOR_ARRAY_SPEC", 4), ("DATA_DATASET_SPEC", 5), ("DATA_ITERATOR_SPEC", 6), ("OPTIONAL_SPEC", 7),
    ("PER_REPLICA_SPEC", 8), ("VARIABLE_SPEC", 9), ("ROW_PARTITION_SPEC", 10), ("REGISTERED_TYPE_SPEC", 12),
    ("EXTENSION_TYPE_SPEC", 13),
)
SPARSE_TENSOR_SPEC = 1
RAGGED_TENSOR_SPEC = 3


# --- building descriptors ------------------------------------------------------------------------

def _field(name, number, type_, ref="", *, repeated=False, oneof=None):
    field = _F(name=name, number=number, type=type_, json_name=name,
               label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    if ref:
        field.type_name = f".{PACKAGE}.{ref}"
    if oneof is not None:
        field.oneof_index = oneof
    return field


def _message(name, *fields, oneof=None, nested=(), enums=()):
    message = descriptor_pb2.DescriptorProto(name=name, field=list(fields), nested_type=list(nested),
                                             enum_type=list(enums))
    if oneof:
        message.oneof_decl.add(name=oneof)
    return message


def _map(owner, name, number, value_ref):
    """A ``map<string, value_ref>`` field of ``owner``: (its entry message, the field)."""
    entry = name.title().replace("_", "") + "Entry"
    message = _message(entry, _field("key", 1, STRING), _field("value", 2, MESSAGE, value_ref))
    message.options.map_entry = True
    return message, _field(name, number, MESSAGE, f"{owner}.{entry}", repeated=True)


def _enum(name, values):
    return descriptor_pb2.EnumDescriptorProto(
        name=name, value=[descriptor_pb2.EnumValueDescriptorProto(name=n, number=v) for n, v in values])


def _opaque(name):
    """A message whose content inspection never reads: declared so that a oneof still says which member is set."""
    return _message(name)


# --- the messages --------------------------------------------------------------------------------

def _meta_graph_messages():
    meta_info_def = _message("MetaInfoDef", _field("tags", 4, STRING, repeated=True))
    signatures_entry, signature_def = _map("MetaGraphDef", "signature_def", 5, "SignatureDef")
    inputs_entry, inputs = _map("SignatureDef", "inputs", 1, "TensorInfo")
    outputs_entry, outputs = _map("SignatureDef", "outputs", 2, "TensorInfo")
    return [
        _message("SavedModel", _field("saved_model_schema_version", 1, INT64),
                 _field("meta_graphs", 2, MESSAGE, "MetaGraphDef", repeated=True)),
        _message("MetaGraphDef", _field("meta_info_def", 1, MESSAGE, "MetaGraphDef.MetaInfoDef"), signature_def,
                 _field("object_graph_def", 7, MESSAGE, "SavedObjectGraph"),
                 nested=[meta_info_def, signatures_entry]),
        _message("SignatureDef", inputs, outputs, _field("method_name", 3, STRING),
                 nested=[inputs_entry, outputs_entry]),
        _message("TensorInfo",
                 _field("name", 1, STRING, oneof=0),
                 _field("coo_sparse", 4, MESSAGE, "TensorInfo.CooSparse", oneof=0),
                 _field("composite_tensor", 5, MESSAGE, "TensorInfo.CompositeTensor", oneof=0),
                 _field("dtype", 2, ENUM, "DataType"),
                 _field("tensor_shape", 3, MESSAGE, "TensorShapeProto"),
                 oneof="encoding", nested=[_opaque("CooSparse"), _opaque("CompositeTensor")]),
        _message("TensorShapeProto", _field("dim", 2, MESSAGE, "TensorShapeProto.Dim", repeated=True),
                 _field("unknown_rank", 3, BOOL),
                 nested=[_message("Dim", _field("size", 1, INT64), _field("name", 2, STRING))]),
    ]


def _struct_messages():
    kinds = [  # StructuredValue's oneof "kind"
        ("none_value", 1, MESSAGE, "NoneValue"), ("float64_value", 11, DOUBLE, ""),
        ("int64_value", 12, SINT64, ""), ("string_value", 13, STRING, ""), ("bool_value", 14, BOOL, ""),
        ("tensor_shape_value", 31, MESSAGE, "TensorShapeProto"), ("tensor_dtype_value", 32, ENUM, "DataType"),
        ("tensor_spec_value", 33, MESSAGE, "TensorSpecProto"), ("type_spec_value", 34, MESSAGE, "TypeSpecProto"),
        ("bounded_tensor_spec_value", 35, MESSAGE, "BoundedTensorSpecProto"),
        ("list_value", 51, MESSAGE, "ListValue"), ("tuple_value", 52, MESSAGE, "TupleValue"),
        ("dict_value", 53, MESSAGE, "DictValue"), ("named_tuple_value", 54, MESSAGE, "NamedTupleValue"),
        ("tensor_value", 55, MESSAGE, "TensorProto"), ("numpy_value", 56, MESSAGE, "TensorProto"),
    ]
    fields_entry, fields = _map("DictValue", "fields", 1, "StructuredValue")

    def spec_fields():
        return [_field("name", 1, STRING), _field("shape", 2, MESSAGE, "TensorShapeProto"),
                _field("dtype", 3, ENUM, "DataType")]

    return [
        _message("StructuredValue", *[_field(n, i, t, ref, oneof=0) for n, i, t, ref in kinds], oneof="kind"),
        _opaque("NoneValue"),
        _opaque("TensorProto"),
        _message("ListValue", _field("values", 1, MESSAGE, "StructuredValue", repeated=True)),
        _message("TupleValue", _field("values", 1, MESSAGE, "StructuredValue", repeated=True)),
        _message("DictValue", fields, nested=[fields_entry]),
        _message("PairValue", _field("key", 1, STRING), _field("value", 2, MESSAGE, "StructuredValue")),
        _message("NamedTupleValue", _field("name", 1, STRING),
                 _field("values", 2, MESSAGE, "PairValue", repeated=True)),
        _message("TensorSpecProto", *spec_fields()),
        _message("BoundedTensorSpecProto", *spec_fields(), _field("minimum", 4, MESSAGE, "TensorProto"),
                 _field("maximum", 5, MESSAGE, "TensorProto")),
        _message("TypeSpecProto", _field("type_spec_class", 1, ENUM, "TypeSpecProto.TypeSpecClass"),
                 _field("type_state", 2, MESSAGE, "StructuredValue"), _field("type_spec_class_name", 3, STRING),
                 _field("num_flat_components", 4, INT32), enums=[_enum("TypeSpecClass", TYPE_SPEC_CLASSES)]),
    ]


def _object_graph_messages():
    kinds = [("user_object", 4, "SavedUserObject"), ("asset", 5, "SavedAsset"), ("function", 6, "SavedFunction"),
             ("variable", 7, "SavedVariable"), ("bare_concrete_function", 8, "SavedBareConcreteFunction"),
             ("constant", 9, "SavedConstant"), ("resource", 10, "SavedResource"),
             ("captured_tensor", 12, "CapturedTensor")]
    functions_entry, concrete_functions = _map("SavedObjectGraph", "concrete_functions", 2, "SavedConcreteFunction")
    return [
        _message("SavedObjectGraph", _field("nodes", 1, MESSAGE, "SavedObject", repeated=True), concrete_functions,
                 nested=[functions_entry]),
        _message("SavedObject", _field("children", 1, MESSAGE, "ObjectReference", repeated=True),
                 *[_field(name, number, MESSAGE, ref, oneof=0) for name, number, ref in kinds],
                 _field("registered_name", 13, STRING), oneof="kind"),
        # TensorFlow's TrackableObjectGraph.TrackableObject.ObjectReference: the wire format is what counts.
        _message("ObjectReference", _field("node_id", 1, INT32), _field("local_name", 2, STRING)),
        _message("SavedUserObject", _field("identifier", 1, STRING), _field("version", 2, MESSAGE, "VersionDef")),
        _message("VersionDef", _field("producer", 1, INT32), _field("min_consumer", 2, INT32),
                 _field("bad_consumers", 3, INT32, repeated=True)),
        _message("SavedFunction", _field("concrete_functions", 1, STRING, repeated=True)),
        _message("SavedBareConcreteFunction", _field("concrete_function_name", 1, STRING)),
        _message("SavedConcreteFunction", _field("bound_inputs", 2, INT32, repeated=True),
                 _field("canonicalized_input_signature", 3, MESSAGE, "StructuredValue"),
                 _field("output_signature", 4, MESSAGE, "StructuredValue")),
        *[_opaque(name) for name in ("SavedAsset", "SavedVariable", "SavedConstant", "SavedResource",
                                     "CapturedTensor")],
    ]


def _build():
    data_types = [("DT_INVALID", 0)] + [
        (f"DT_{name}{suffix}", number + offset)
        for offset, suffix, _ in _REFERENCE_TYPES
        for number, (name, _) in enumerate(_DATA_TYPES, start=1)]
    file_proto = descriptor_pb2.FileDescriptorProto(
        name=f"{PACKAGE}/saved_model_subset.proto", package=PACKAGE, syntax="proto3",
        enum_type=[_enum("DataType", data_types)],
        message_type=_meta_graph_messages() + _struct_messages() + _object_graph_messages())
    # A private pool: TensorFlow's own definitions may be in the default one.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{m.name}"))
            for m in file_proto.message_type}


_CLASSES = _build()

SavedModel = _CLASSES["SavedModel"]
MetaGraphDef = _CLASSES["MetaGraphDef"]
SavedObjectGraph = _CLASSES["SavedObjectGraph"]
StructuredValue = _CLASSES["StructuredValue"]
