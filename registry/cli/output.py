"""Text and JSON output shared by the commands: tables, sizes, times, records as plain data.

Sizes are ``registry.output.format_size``, which the web catalog's pages use too.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import click


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces, the header underlined."""
    rows = [tuple("" if v is None else str(v) for v in row) for row in rows]
    widths = [max(len(str(r[i])) for r in [tuple(header), *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=False)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def timestamp(value: datetime | float | None) -> str:
    """UTC, to the second; catalogs on SQLite give back naive datetimes, which are UTC too."""
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, timezone.utc)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def tensor_spec(info: dict) -> str:
    """``float32[?,32,32,3]`` from a signature's recorded ``{"dtype", "shape", "kind"}``."""
    shape = info.get("shape")
    dims = "<unknown rank>" if shape is None else ",".join("?" if d is None else str(d) for d in shape)
    kind = info.get("kind", "dense")
    return f"{info.get('dtype', '?')}[{dims}]" + ("" if kind == "dense" else f" ({kind})")


def record_data(record) -> dict:
    """A catalog record (SQLModel) as JSON-ready data."""
    return record.model_dump(mode="json")
