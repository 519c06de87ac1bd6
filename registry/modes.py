"""The two modes of the compatibility matrix and how to tell which one code runs in.

``tf1`` is TF1 compatibility mode: ops are added to a ``tf.Graph`` and run in a
session. ``tf2`` is eager TensorFlow 2. The mode of a call is the mode
TensorFlow is in at that moment, unless the caller names one.
"""

from __future__ import annotations

from registry.errors import ModeError, UnknownMode

MODES = ("tf1", "tf2")


def current_mode() -> str:
    """"tf2" when TensorFlow executes eagerly, "tf1" while a TF1 graph is being built.

    A function graph takes the mode of the code that builds it. ``tf.compat.v1.wrap_function``
    and ``function.Defun`` trace without automatic control dependencies (ops run only as
    fetches need them, as in TF1), so they are TF1 code anywhere; any other function graph
    (``tf.function``, a control-flow body) has the mode of its outermost context: TF1 inside a
    ``tf.Graph``, TF2 when traced from eager code. tensorflow_hub 0.15 built modules in all
    the TF1 cases.
    """
    import tensorflow as tf

    if tf.executing_eagerly():
        return "tf2"
    if not tf.inside_function():
        return "tf1"
    # AutomaticControlDependencies sets this flag while tf.function traces; wrap_function and Defun never do.
    if not getattr(tf.compat.v1.get_default_graph(), "_add_control_dependencies", True):
        return "tf1"
    with tf.init_scope():  # out of every function being built, into the outermost context
        return "tf2" if tf.executing_eagerly() else "tf1"


def resolve_mode(mode: str | None) -> str:
    """The mode to use: the one asked for (checked against TensorFlow's state), else the current one."""
    if mode is None:
        return current_mode()
    if mode not in MODES:
        raise UnknownMode(f"mode must be one of {', '.join(MODES)} ('tf1': build into a TF1 graph; 'tf2': eager), "
                          f"not {mode!r}")
    require_mode(mode)
    return mode


def require_mode(mode: str) -> None:
    """Raise ``ModeError`` unless TensorFlow is in ``mode`` right now."""
    actual = current_mode()
    if actual == mode:
        return
    if mode == "tf1":
        raise ModeError(
            "mode tf1 builds into a TF1 graph, but TensorFlow is executing eagerly (or tracing a tf.function "
            "for eager code): call it inside "
            "`with tf.Graph().as_default():` (or after tf.compat.v1.disable_v2_behavior()), or use mode='tf2'")
    raise ModeError(
        "mode tf2 needs eager execution, but a TF1 graph is being built: call it outside "
        "`tf.Graph().as_default()`, or use mode='tf1'")
