"""Writing a module directory: its graphs, and the variable values a session holds.

Both ways of exporting end here: ``Module.export`` (weights from the caller's
session, e.g. after fine-tuning) and ``ModuleSpec.export`` (weights from a TF1
checkpoint, through a throwaway graph). This module knows neither class: it
takes the graph variants' MetaGraphDefs and the variables by module-relative
name, so it sits below both in the package's import line.
"""

from __future__ import annotations

from typing import Any, Iterable

import tensorflow as tf

from registry.adapters.tf1_hub import format as module_format

tf1 = tf.compat.v1


def write_module(path, meta_graphs: Iterable[Any], variable_map: dict[str, Any], session) -> None:
    """Write ``meta_graphs`` to ``path`` with the values ``session`` holds for ``variable_map``.

    ``variable_map`` maps a variable's name in the module to the variable (or
    to the list of its slices, if partitioned), as ``Module.variable_map`` does.
    """
    saver = None
    if variable_map:
        with tf1.get_default_graph().name_scope(None):
            saver = tf1.train.Saver(variable_map, sharded=True, write_version=tf1.train.SaverDef.V2,
                                    name="tf1_hub_export_saver")

    def save_variables(prefix: str) -> None:
        if saver is not None:
            saver.save(session, prefix, write_meta_graph=False, write_state=False)

    module_format.write_module(path, meta_graphs, save_variables)
