"""``eval_function_for_module``: call a module's signatures on values, without building a graph yourself.

    with registry.eval_function_for_module("text/nnlm-tiny/2") as embed:
        vectors = embed(["hello world"])                      # the default signature and output
        outputs = embed({"x": batch}, signature="mix", as_dict=True)

The module is built into a graph of its own, with placeholders for every
signature's inputs, and one session holds its initialised variables and tables
until the ``with`` block ends; each call feeds values and returns numpy values.
It works from eager code and from TF1 code alike, and leaves the caller's
default graph alone.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import tensorflow as tf

from registry.adapters.tf1_hub.errors import SignatureTypeError
from registry.adapters.tf1_hub.module import Module
from registry.adapters.tf1_hub.signatures import ParsedTensorInfo, bind_inputs

tf1 = tf.compat.v1


def _placeholder(info: ParsedTensorInfo, name: str):
    if info.is_sparse:
        shape = None if info.shape.rank is None else info.shape.as_list()
        return tf1.sparse_placeholder(info.dtype, shape=shape, name=name)
    if info.type_spec is not None:
        specs = tf.nest.flatten(info.type_spec, expand_composites=True)
        parts = [tf1.placeholder(spec.dtype, spec.shape, name=f"{name}.component_{i}")
                 for i, spec in enumerate(specs)]
        return tf.nest.pack_sequence_as(info.type_spec, parts, expand_composites=True)
    return tf1.placeholder(info.dtype, info.shape, name=name)


@contextlib.contextmanager
def eval_function_for_module(spec, tags=None, *, registry=None) -> Iterator[Callable[..., Any]]:
    """Yield ``f(inputs=None, signature=None, as_dict=None)``, which runs a signature of the module on values.

    ``spec`` is a ``ModuleSpec`` or a handle; ``tags`` picks the graph variant.
    ``f`` takes inputs as ``Module.__call__`` does (one value for a signature's
    only input, a dict, or nothing) and returns what ``session.run`` gives for
    the ``default`` output, or for every output with ``as_dict=True``.
    """
    graph = tf.Graph()
    with graph.as_default():
        module = Module(spec, tags=tags, registry=registry)
        placeholders, outputs = {}, {}
        for signature in module.get_signature_names():
            # Signatures often name their inputs alike; a scope per signature keeps the placeholders apart.
            with tf1.variable_scope(signature):
                placeholders[signature] = {name: _placeholder(info, name)
                                           for name, info in module.get_input_info_dict(signature).items()}
                outputs[signature] = module(placeholders[signature], signature=signature, as_dict=True)
        initializers = [tf1.global_variables_initializer(), tf1.local_variables_initializer(),
                        tf1.tables_initializer()]
    graph.finalize()

    # Not entered as a context manager: that would make the module's graph the caller's default graph.
    session = tf1.Session(graph=graph)
    try:
        session.run(initializers)

        def evaluate(inputs=None, _sentinel=None, signature: str | None = None, as_dict: bool | None = None):
            if _sentinel is not None:
                raise TypeError("pass signature= and as_dict= by keyword; the inputs are the only positional "
                                "argument")
            signature = signature or "default"
            if signature not in placeholders:
                raise SignatureTypeError(f"Signature {signature!r} is missing from meta graph; the module's "
                                         f"signatures are: {', '.join(sorted(placeholders))}")
            feeds = placeholders[signature]
            values = bind_inputs(inputs, feeds, signature)
            fetch = outputs[signature]
            if not as_dict:
                if "default" not in fetch:
                    raise SignatureTypeError(f"There is no output named 'default'. Use as_dict=True (signature "
                                             f"{signature!r} has outputs {', '.join(sorted(fetch))})")
                fetch = fetch["default"]
            return session.run(fetch, feed_dict={feeds[name]: value for name, value in values.items()})

        yield evaluate
    finally:
        session.close()
