"""Progress bars for uploads and downloads, drawn by Click on stderr.

``Registry(progress_factory=...)`` calls ``factory(label, total_bytes)`` around
every long transfer and feeds the yielded ``update(n_bytes)`` as bytes move.
Transfers of unknown size (an HTTP download without Content-Length) get a byte
counter instead of a bar.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

import click

from registry.output import format_size


@contextlib.contextmanager
def click_progress_factory(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A bar when the size is known, a running byte count when it is not; both on stderr."""
    if total:
        with click.progressbar(length=total, label=label, file=sys.stderr, show_eta=True,
                               show_percent=True) as bar:
            yield bar.update
            # Some backends copy local files without reporting progress; a transfer that returned is complete.
            if bar.pos < total:
                bar.update(total - bar.pos)
        return
    with _byte_counter(label) as update:
        yield update


@contextlib.contextmanager
def _byte_counter(label: str) -> Iterator[Callable[[int], None]]:
    seen = 0
    shown = -1

    def update(n_bytes: int) -> None:
        nonlocal seen, shown
        seen += n_bytes
        # Redraw at most every 256 KiB: a line per read chunk would cost more than the download.
        if seen - shown >= 256 * 1024:
            shown = seen
            click.echo(f"\r{label}  {format_size(seen)}", file=sys.stderr, nl=False)

    try:
        yield update
    finally:
        if shown >= 0:
            click.echo(f"\r{label}  {format_size(seen)}", file=sys.stderr)
