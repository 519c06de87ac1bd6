"""What the core asks the TF1 Hub adapter beyond loading: a Keras layer's object and refusal, a page's usage code.

Kept apart from ``adapter.py`` so the adapter's methods stay one line each. Imports
no other module of this package, and TensorFlow only inside ``keras_reusable``.
"""

from __future__ import annotations

from pathlib import Path

from registry.adapter import KerasReusable, UsageSnippet, registry_usage
from registry.errors import UnsupportedOperation

#: tf.compat.v1 dtype names for the placeholder in the TF1 snippet (the catalog stores numpy-style names).
_TF_DTYPES = {"float32": "tf.float32", "float64": "tf.float64", "int32": "tf.int32", "int64": "tf.int64",
              "string": "tf.string", "bool": "tf.bool", "uint8": "tf.uint8", "float16": "tf.float16"}


def refuse_keras_fine_tuning(format: str, *, trainable: bool, mode: str, convert_code: str) -> None:
    """A Keras layer does not fine-tune a TF1 Hub module, whatever the matrix allows in mode tf1.

    The matrix allows TF1 Hub fine-tuning in mode tf1 only through the format's own
    graph-mode loader: the signatures a layer calls have lost update ops and
    regularization losses. Inference through a layer is fine; ``convert_code``
    converts the module into a model a layer fine-tunes.
    """
    if not trainable:
        return
    alternative = (f"convert it to a fine-tunable TF2 SavedModel ({convert_code}) and wrap that; or "
                   f"registry.fine_tune(handle, mode='tf1') in a tf.Graph")
    raise UnsupportedOperation(
        "a Keras layer cannot fine-tune a TF1 Hub module: its signatures lose the module's update ops "
        f"and regularization losses. Instead: {alternative}",
        format=format, operation="fine_tune", mode=mode, alternative=alternative,
    )


def keras_reusable(path: Path) -> KerasReusable:
    """The module restored through its signatures (tags=[]: the inference graph variant), ``default`` unless named.

    Its variables come from the handle and are never the layer's weights: a layer
    over a TF1 Hub module is inference only, and a saved model around it re-loads it.
    """
    import tensorflow as tf

    return KerasReusable(tf.compat.v1.saved_model.load_v2(str(path), tags=[]), default_signature="default",
                         owns_weights=False)


def usage(version, *, convert_to: str) -> list[UsageSnippet]:
    """``registry.load`` (signatures only in TF2), ``registry.Module`` in a graph, an inference-only Keras layer,
    and the conversion to format ``convert_to`` that makes the module fine-tunable in TF2."""
    handle = version.handle
    snippets = registry_usage(
        handle, load_note="TF1 Hub modules load through their signatures only (see the compatibility matrix).",
        keras_code=f'import registry\n\nlayer = registry.KerasLayer("{handle}")'
                   '  # inference only for TF1 Hub modules\n')
    snippets.insert(1, UsageSnippet("use-module", "registry.Module (TF1 graph)", _module_code(version)))
    snippets.append(UsageSnippet(
        "use-convert", "Convert to a fine-tunable TF2 SavedModel",
        f"model-registry convert {handle} --to {convert_to}\n\n# or, in Python:\nimport registry\n\n"
        f'converted = registry.convert("{handle}", to="{convert_to}")\n'
        f"layer = registry.KerasLayer(converted.version.handle, trainable=True)\n",
        note="Publishes the next version of this model, derived from this one: the module's {'train'} variant, "
             "update ops and regularization losses kept for training in Keras 3 or tf_keras."))
    return snippets


def _module_code(version) -> str:
    lines = ["import tensorflow as tf", "import registry", "", "with tf.Graph().as_default():",
             f'    module = registry.Module("{version.handle}")']
    default = next((s for s in version.signatures if s.name == "default" and not s.tags), None)
    if default is not None and len(default.inputs) == 1:
        spec = next(iter(default.inputs.values()))
        dtype = _TF_DTYPES.get(str(spec.get("dtype")), f"tf.{spec.get('dtype')}")
        shape = spec.get("shape")
        shape_code = "None" if shape is None else "[" + ", ".join("None" if d is None else str(d) for d in shape) + "]"
        lines += [f"    inputs = tf.compat.v1.placeholder({dtype}, shape={shape_code})",
                  "    outputs = module(inputs)"]
    else:
        lines.append("    print(module.get_signature_names())")
    lines += ["    with tf.compat.v1.Session() as session:",
              "        session.run([tf.compat.v1.global_variables_initializer(), tf.compat.v1.tables_initializer()])"]
    return "\n".join(lines) + "\n"
