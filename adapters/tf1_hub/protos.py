"""The three protocol messages of the TF1 Hub format, defined here from their wire format.

tensorflow_hub shipped generated ``_pb2`` modules for these; this package does
not depend on tensorflow_hub, so it builds the same messages (same package
``tensorflow_hub``, same field numbers and types) from descriptors at import
time. Bytes written with these classes are what tensorflow_hub 0.15 reads and
writes:

- ``ModuleDef``: the whole content of ``tfhub_module.pb`` (format and required features);
- ``ModuleAttachment``: one ``attach_message`` entry, stored serialized in each
  MetaGraphDef's ``hub_module_attachments`` collection (a bytes_list);
- ``ImageModuleInfo``: the message attached under ``image_module_info`` by image modules.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, type_: _F.Type.ValueType, *, label: _F.Label.ValueType = _F.LABEL_OPTIONAL,
           type_name: str = ""):
    field = _F(name=name, number=number, type=type_, label=label, json_name=name)
    if type_name:
        field.type_name = type_name
    return field


def _file(name: str, *messages: descriptor_pb2.DescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    return descriptor_pb2.FileDescriptorProto(
        name=name, package="tensorflow_hub", syntax="proto3", message_type=list(messages))


def _module_def_file():
    message = descriptor_pb2.DescriptorProto(name="ModuleDef")
    message.enum_type.add(name="Format", value=[
        descriptor_pb2.EnumValueDescriptorProto(name="FORMAT_UNSPECIFIED", number=0),
        descriptor_pb2.EnumValueDescriptorProto(name="FORMAT_V3", number=3),
    ])
    message.field.extend([
        _field("format", 1, _F.TYPE_ENUM, type_name=".tensorflow_hub.ModuleDef.Format"),
        _field("required_features", 2, _F.TYPE_STRING, label=_F.LABEL_REPEATED),
    ])
    return _file("tensorflow_hub/module_def.proto", message)


def _module_attachment_file():
    message = descriptor_pb2.DescriptorProto(name="ModuleAttachment", field=[
        _field("key", 1, _F.TYPE_STRING),
        _field("value", 2, _F.TYPE_BYTES),
    ])
    return _file("tensorflow_hub/module_attachment.proto", message)


def _image_module_info_file():
    input_size = descriptor_pb2.DescriptorProto(name="InputSize", field=[
        _field("height", 1, _F.TYPE_INT32),
        _field("width", 2, _F.TYPE_INT32),
    ])
    input_size.reserved_range.add(start=3, end=4)
    message = descriptor_pb2.DescriptorProto(name="ImageModuleInfo", nested_type=[input_size], field=[
        _field("default_image_size", 1, _F.TYPE_MESSAGE, type_name=".tensorflow_hub.ImageModuleInfo.InputSize"),
    ])
    return _file("tensorflow_hub/image_module_info.proto", message)


def _build():
    # A private pool: the default pool may already hold tensorflow_hub's own
    # definitions (if the user has it installed), and adding a second file of
    # the same name there would fail.
    pool = descriptor_pool.DescriptorPool()
    classes = {}
    for file_proto in (_module_def_file(), _module_attachment_file(), _image_module_info_file()):
        pool.Add(file_proto)
        for message in file_proto.message_type:
            full_name = f"tensorflow_hub.{message.name}"
            classes[message.name] = message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))
    return classes


_CLASSES = _build()

ModuleDef = _CLASSES["ModuleDef"]
ModuleAttachment = _CLASSES["ModuleAttachment"]
ImageModuleInfo = _CLASSES["ImageModuleInfo"]

#: ``ModuleDef.format`` of the only version of the format there is.
FORMAT_V3 = ModuleDef.FORMAT_V3
