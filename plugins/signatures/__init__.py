"""The built-in common signatures, as an ordinary plugin: registers the definitions and the CLI commands.

The definitions themselves (``registry.tasks.definitions.BUILTIN_DEFINITIONS``)
and the conformance check that runs on every publish live in the core
(``registry.tasks``), because the catalog, search and publishing depend on
them. This plugin contributes them through ``register_signature_definitions``,
the same hook a third-party plugin uses to add a task, and adds the
``search`` and ``tasks`` commands.
"""

from __future__ import annotations

from registry.hookspecs import hookimpl
from registry.tasks.definitions import BUILTIN_DEFINITIONS


@hookimpl
def register_signature_definitions(register):
    for definition in BUILTIN_DEFINITIONS:
        register(definition)


@hookimpl
def register_commands(cli):
    from registry.plugins.signatures.commands import search, tasks

    cli.add_command(search)
    cli.add_command(tasks)
