"""The hooks plugins implement. Keyword arguments only; one docstring each."""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("model_registry")
hookimpl = pluggy.HookimplMarker("model_registry")


@hookspec
def register_adapters(register):
    """Register format adapters: call ``register(AdapterClass)`` for each."""


@hookspec
def claim_directory(path):
    """Return the format name of the model directory ``path`` if this plugin's adapter reads it, else None.

    Kept for plugins written before adapters declared ``FormatAdapter.detect``
    themselves; new plugins need not implement it. Every answer counts as a claim
    by the adapter of that format, exactly as its ``detect`` returning True would,
    and ``FormatAdapter.precedence`` decides between claims (``AdapterSet.detect``):
    no plugin wins by being registered first or last.
    """


@hookspec
def register_commands(cli):
    """Add commands or command groups to the ``model-registry`` Click group ``cli``."""


@hookspec
def inspect_version(path, info, adapter, claimed_tasks, plugin_manager):
    """Before a publish is recorded: examine the model directory and its ``ArtifactInfo``.

    ``claimed_tasks`` are the common signatures the publisher claims (the core
    has already checked them against the definitions); ``plugin_manager`` is
    the manager running the hook, for plugins that gather contributions from
    other plugins.

    Return ``{"details": {...}}`` to record facts with the version (or None).
    Raise a ``RegistryError`` to refuse the publish; nothing has been written yet.
    """


@hookspec
def register_signature_definitions(register):
    """Register common signatures (tasks): call ``register(definition)`` with a
    ``registry.tasks.definitions.SignatureDefinition`` for each."""
