"""The common-signatures plugin: checks on publish which tasks a version implements, and refuses false claims.

It registers the built-in definitions (``definitions.BUILTIN_DEFINITIONS``)
through ``register_signature_definitions``, the same hook a third-party plugin
uses to add a task, and checks every publish in ``inspect_version``. What it
finds is stored in the catalog's ``version_task`` table and comes back as
``registry.get_version(handle).tasks``; ``registry.search`` and
``registry.interchangeable`` read it from there.
"""

from __future__ import annotations

from registry.hookspecs import hookimpl

from plugins.signatures.definitions import BUILTIN_DEFINITIONS


@hookimpl
def register_signature_definitions(register):
    for definition in BUILTIN_DEFINITIONS:
        register(definition)


@hookimpl
def inspect_version(path, info, claimed_tasks, plugin_manager):
    from plugins.signatures.conformance import DefinitionSet, check_version

    if plugin_manager is None:  # called without one: the process-wide manager
        from registry.plugins import get_plugin_manager

        plugin_manager = get_plugin_manager()
    return check_version(DefinitionSet(plugin_manager), info, path=path, claimed=claimed_tasks)


@hookimpl
def register_commands(cli):
    from plugins.signatures.commands import search, tasks

    cli.add_command(search)
    cli.add_command(tasks)
