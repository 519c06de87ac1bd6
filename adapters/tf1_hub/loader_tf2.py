"""Mode tf2: a TF1 Hub module loaded eagerly, as ``tf.compat.v1.saved_model.load_v2`` restores it.

The restored object exposes each signature of one graph variant as a concrete
function in ``.signatures``. This wrapper adds what tensorflow_hub users
reached for next: calling the module on its ``default`` signature. Update ops
and regularization losses do not survive this path; fine-tuning needs mode tf1.
"""

from __future__ import annotations

from typing import Any

from registry.adapters.tf1_hub import format as module_format


class LoadedTF1Module:
    """A TF1 Hub module restored for eager use: ``.signatures``, ``.variables``, callable on ``default``."""

    def __init__(self, loaded, path: str, tags: frozenset[str]):
        self._loaded = loaded
        self.path = path
        self.tags = tags

    @property
    def signatures(self):
        return self._loaded.signatures

    @property
    def variables(self):
        return list(getattr(self._loaded, "variables", ()))

    def __getattr__(self, name: str) -> Any:
        # Everything else the restored object offers (graph, prune, initializer...).
        return getattr(self._loaded, name)

    def __call__(self, inputs=None, signature: str = "default", as_dict: bool = False):
        """Apply ``signature`` to one tensor (its single input) or a dict of inputs."""
        from registry.adapters.tf1_hub.errors import SignatureTypeError

        try:
            function = self._loaded.signatures[signature]
        except KeyError:
            raise SignatureTypeError(f"the module has no signature {signature!r}; its signatures are: "
                                     f"{', '.join(sorted(self._loaded.signatures))}") from None
        if inputs is None:
            inputs = {}
        elif not isinstance(inputs, dict):
            names = sorted(function.structured_input_signature[1])
            if len(names) != 1:
                raise SignatureTypeError(f"Signature expects multiple inputs. Use a dict: signature "
                                         f"{signature!r} takes {', '.join(names)}")
            inputs = {names[0]: inputs}
        outputs = function(**inputs)
        if as_dict:
            return outputs
        if "default" not in outputs:
            raise SignatureTypeError(f"There is no output named 'default'. Use as_dict=True (signature "
                                     f"{signature!r} has outputs {', '.join(sorted(outputs))})")
        return outputs["default"]

    def __repr__(self):
        return f"<LoadedTF1Module {self.path} tags={sorted(self.tags)} signatures={sorted(self.signatures)}>"


def load_v2(path, tags=None) -> LoadedTF1Module:
    """Restore the module at ``path`` eagerly; ``tags`` picks the graph variant (default: the empty set)."""
    import tensorflow as tf

    module_format.read_module_def(path)  # the format check, before TensorFlow reads anything
    tags = frozenset(tags or ())
    graphs = module_format.read_module(path)
    graphs.meta_graph(tags)  # a clear error listing the variants
    loaded = tf.compat.v1.saved_model.load_v2(str(path), tags=sorted(tags))
    return LoadedTF1Module(loaded, str(path), tags)
