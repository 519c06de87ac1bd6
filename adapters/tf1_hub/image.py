"""Image modules: the attached ``image_module_info`` message and the expected input size.

An image module may attach an ``ImageModuleInfo`` under the key
``image_module_info`` to say which image size it was trained for, even when
its signature accepts any size. ``get_expected_image_size`` reads that, and
falls back to the static shape of the signature's image input.
"""

from __future__ import annotations

from registry.adapters.tf1_hub import protos
from registry.adapters.tf1_hub.export import attach_message

#: The attachment key tensorflow_hub used for image module facts.
IMAGE_MODULE_INFO_KEY = "image_module_info"

ImageModuleInfo = protos.ImageModuleInfo


def attach_image_module_info(image_module_info=None) -> None:
    """Attach an ``ImageModuleInfo`` to the module being defined (call inside ``module_fn``)."""
    attach_message(IMAGE_MODULE_INFO_KEY, image_module_info or ImageModuleInfo())


def get_image_module_info(module_or_spec, required: bool = False):
    """The module's attached ``ImageModuleInfo``, or None."""
    return module_or_spec.get_attached_message(IMAGE_MODULE_INFO_KEY, ImageModuleInfo, required=required)


def _image_input_shape(module_or_spec, signature, input_name):
    input_name = input_name or "images"
    inputs = module_or_spec.get_input_info_dict(signature)
    if input_name not in inputs:
        raise ValueError(f"signature {signature or 'default'!r} has no input {input_name!r} "
                         f"(its inputs: {', '.join(sorted(inputs))})")
    shape = inputs[input_name].get_shape()
    if shape.rank != 4:
        raise ValueError(f"input {input_name!r} must have shape [batch, height, width, channels], not {shape}")
    return shape.as_list()


def get_expected_image_size(module_or_spec, signature: str | None = None,
                            input_name: str | None = None) -> list[int]:
    """``[height, width]`` of the images the module expects.

    Taken from the attached ``image_module_info`` when present, else from the
    static shape of the signature's image input (default name ``images``).
    """
    info = get_image_module_info(module_or_spec)
    if info is not None and info.HasField("default_image_size"):
        size = info.default_image_size
        if size.height and size.width:
            return [size.height, size.width]
    _, height, width, _ = _image_input_shape(module_or_spec, signature, input_name)
    if not height or not width:
        raise ValueError("the module attaches no image size and its image input has no static "
                         "height and width; ask its publisher which size to use")
    return [height, width]


def get_num_image_channels(module_or_spec, signature: str | None = None, input_name: str | None = None) -> int:
    """The number of colour channels of the signature's image input (3 for RGB)."""
    channels = _image_input_shape(module_or_spec, signature, input_name)[-1]
    if channels is None:
        raise ValueError("the module's image input has no static number of channels")
    return channels
