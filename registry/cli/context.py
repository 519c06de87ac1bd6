"""What every command shares: the global options and one lazily built ``Registry``.

The registry is built on first use, not when the CLI starts, so commands that
never touch the catalog (``compat``, ``cache``, ``--help``) stay fast and work
even when the catalog database cannot be opened.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from registry.api import Registry
    from registry.config import Settings


@dataclass
class CliContext:
    """Global options, and the registry the commands act on."""

    json: bool = False
    #: True or False when ``--progress``/``--no-progress`` was given; None means "when stderr is a terminal".
    progress: bool | None = None
    debug: bool = False
    _registry: "Registry | None" = field(default=None, repr=False)
    _settings: "Settings | None" = field(default=None, repr=False)

    @property
    def show_progress(self) -> bool:
        if self.progress is not None:
            return self.progress
        return sys.stderr.isatty()

    @property
    def settings(self) -> "Settings":
        """The configuration from MODEL_REGISTRY_* variables (read once per command), without opening anything."""
        if self._registry is not None:
            return self._registry.settings
        if self._settings is None:
            from registry.config import Settings

            self._settings = Settings.from_env()
        return self._settings

    @property
    def registry(self) -> "Registry":
        if self._registry is None:
            from registry.api import Registry
            from registry.cli.progress import click_progress_factory

            self._registry = Registry(settings=self.settings,
                                      progress_factory=click_progress_factory if self.show_progress else None)
        return self._registry


class CliError(click.ClickException):
    """A failure shown as one ``Error: ...`` line (exit status 1)."""

    def __init__(self, message: str):
        super().__init__(" ".join(part.strip() for part in str(message).splitlines() if part.strip()))


pass_context = click.make_pass_decorator(CliContext, ensure=True)


def json_option(command):
    """``--json`` on a command; the global ``model-registry --json`` turns it on for every command."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(command)


def wants_json(ctx_obj: CliContext, as_json: bool) -> bool:
    return as_json or ctx_obj.json
