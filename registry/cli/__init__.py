"""The ``model-registry`` command line: a Click group whose command groups live one per module.

Errors the user can cause (every ``RegistryError``) are printed as one line,
``Error: ...``, with exit status 1; usage errors exit with 2. No traceback
reaches the user unless ``--debug`` or ``MODEL_REGISTRY_DEBUG=1`` asks for it.
Plugins add commands through the ``register_commands`` hook, called the first
time the group lists or looks up its commands; they cannot replace built-ins.
"""

from __future__ import annotations

import click

from registry.cli.context import CliContext, CliError
from registry.config import DEBUG_ENV, debug_from_env, quiet_tensorflow_logs
from registry.errors import PluginError, RegistryError


class PluginCommands(click.Group):
    """The group handed to ``register_commands``: collects plugins' commands, refusing built-in names."""

    def __init__(self, builtins: set[str]):
        super().__init__(name="model-registry")
        self._builtins = builtins

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name in self._builtins:
            raise PluginError(f"a plugin tried to replace the built-in command {name!r}; plugins may only add "
                              f"commands (limit plugins with MODEL_REGISTRY_LOAD_PLUGINS)")
        super().add_command(cmd, name)


class RegistryGroup(click.Group):
    """The top-level group: turns errors into one-line messages and adds plugins' commands.

    Plugins' commands are collected once per plugin manager, so a test that builds
    a fresh manager (``registry.plugin_manager.reset_plugin_manager``) sees its own plugins.
    """

    _plugin_manager = None
    _plugin_commands: dict[str, click.Command] = {}

    def plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        from registry.plugin_manager import get_plugin_manager

        try:
            pm = get_plugin_manager()
            if pm is not self._plugin_manager:
                collector = PluginCommands(set(self.commands))
                pm.hook.register_commands(cli=collector)
                self._plugin_manager, self._plugin_commands = pm, dict(collector.commands)
        except RegistryError as error:
            if _debug(ctx):
                raise
            raise CliError(str(error)) from error
        except Exception as error:  # a broken plugin, even during --help: one line, no traceback
            if _debug(ctx):
                raise
            raise CliError(f"loading plugins failed: {_unexpected(error)}") from error
        return self._plugin_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self.plugin_commands(ctx).get(cmd_name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise  # Click reports these itself (a closed pipe, e.g. `| head`, exits quietly)
        except RegistryError as error:
            if _debug(ctx):
                raise
            raise CliError(str(error)) from error
        except Exception as error:  # the CLI's outer boundary: no traceback for the user
            if _debug(ctx):
                raise
            raise CliError(_unexpected(error)) from error


def _unexpected(error: Exception) -> str:
    return f"{type(error).__name__}: {error} (run with --debug or {DEBUG_ENV}=1 to see the traceback)"


def _debug(ctx: click.Context) -> bool:
    # The root's parameters, not ctx.obj: plugin commands load before the group's callback has run.
    try:
        return bool(ctx.find_root().params.get("debug")) or debug_from_env()
    except RegistryError:
        return False  # MODEL_REGISTRY_DEBUG itself is invalid: main() reports that before anything runs


@click.group(cls=RegistryGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tf-model-registry", prog_name="model-registry")
@click.option("--json", "as_json", is_flag=True, help="JSON output from commands that support it (list, show, ...).")
@click.option("--progress/--no-progress", default=None,
              help="Show progress bars for uploads and downloads (default: when stderr is a terminal).")
@click.option("--debug", is_flag=True, help=f"Show tracebacks of errors (also {DEBUG_ENV}=1).")
@click.pass_context
def cli(ctx: click.Context, as_json: bool, progress: bool | None, debug: bool) -> None:
    """Publish, version, inspect and serve TensorFlow models (TF1 Hub format and TF2 SavedModel).

    The catalog, artifact storage and cache come from MODEL_REGISTRY_DATABASE_URL,
    MODEL_REGISTRY_STORAGE_URL and MODEL_REGISTRY_CACHE_DIR; with none set, an SQLite
    catalog and local folders in your user directories are used.
    """
    ctx.obj = CliContext(json=as_json, progress=progress, debug=debug)


def _add_builtin_commands() -> None:
    from registry.cli import aliases, cache, cards, compat, convert, db, demo, history, models, serve, tokens

    for module in (db, models, convert, aliases, compat, cache, demo, serve, tokens, history, cards):
        for command in module.COMMANDS:
            cli.add_command(command)


_add_builtin_commands()


def main() -> None:
    """Console-script entry point."""
    try:
        debug_from_env()  # read before anything can fail: every later error is shown as it asks
        quiet_tensorflow_logs()  # TensorFlow's start-up lines are noise on a command line (MODEL_REGISTRY_TF_LOGS=1)
    except RegistryError as error:
        CliError(str(error)).show()
        raise SystemExit(CliError.exit_code) from None
    cli.main(prog_name="model-registry")
