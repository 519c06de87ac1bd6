"""The web catalog's Jinja2 environment: templates shipped in the package, autoescaped, with display filters.

Every template is autoescaped, so names, descriptions and notes from the
catalog render as text whatever they contain; ``StrictUndefined`` makes a
misspelt variable an error in the tests rather than a blank on a page.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from registry.output import format_size


def shape_text(shape: Any) -> str:
    """``[?, 32, 32, 3]``; ``unknown rank`` when the rank itself is unknown."""
    if shape is None:
        return "unknown rank"
    return "[" + ", ".join("?" if dim is None or dim == -1 else str(dim) for dim in shape) + "]"


def when_text(moment: datetime | None) -> str:
    """``2026-11-21 17:25 UTC``."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def iso_text(moment: datetime | None) -> str:
    """The machine-readable form for ``<time datetime=...>``."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def tags_text(tags: list[str] | tuple[str, ...]) -> str:
    """A graph variant's tag set: ``{train}``, or ``{} (default)`` for the untagged one."""
    return "{" + ", ".join(tags) + "}" if tags else "{} (default)"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("registry.server", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(shape=shape_text, size=format_size, when=when_text, iso=iso_text, tags=tags_text,
                       pretty_json=pretty_json)
    return env


def render(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(context)
