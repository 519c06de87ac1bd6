"""The compatibility matrix: which operation on which format works in which mode.

The matrix is data. Each format adapter declares its own row of cells (so a
third-party format brings its own), this module collects them, renders them for
users, and holds the one gate that every load, fine-tune and create passes
through. Modes follow TF Hub's documentation: ``tf1`` is TF1 compatibility mode
(building a ``tf.Graph``), ``tf2`` is eager TensorFlow 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from registry.errors import UnknownMode, UnsupportedOperation
from registry.modes import MODES

OPERATIONS = ("load", "fine_tune", "create")


@dataclass(frozen=True)
class Cell:
    """One cell: a format, an operation and a mode, whether it works, and why or what instead."""

    format: str
    operation: str
    mode: str
    supported: bool
    note: str = ""
    alternative: str | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {OPERATIONS}, not {self.operation!r}")
        if not self.supported and not self.alternative:
            raise ValueError(f"unsupported cell {self.key} must name the supported alternative")

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.format, self.operation, self.mode)

    @property
    def label(self) -> str:
        return "supported" if self.supported else "not supported"


class CompatibilityMatrix:
    """All cells of all registered formats, and the gate that enforces them."""

    def __init__(self, cells: Iterable[Cell] = ()):
        self._cells: dict[tuple[str, str, str], Cell] = {}
        for cell in cells:
            if cell.key in self._cells:
                raise ValueError(f"the matrix already has a cell for {cell.key}")
            self._cells[cell.key] = cell

    def __iter__(self):
        return iter(self._cells.values())

    def __len__(self) -> int:
        return len(self._cells)

    @property
    def formats(self) -> list[str]:
        return sorted({cell.format for cell in self._cells.values()})

    def cell(self, format: str, operation: str, mode: str) -> Cell | None:
        return self._cells.get((format, operation, mode))

    def row(self, format: str) -> list[Cell]:
        return [c for c in self._cells.values() if c.format == format]

    def check(self, format: str, operation: str, mode: str) -> Cell:
        """Return the cell, or raise ``UnsupportedOperation`` naming it and its alternative."""
        if mode not in MODES:
            raise UnknownMode(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        cell = self.cell(format, operation, mode)
        if cell is None:
            raise UnsupportedOperation(
                f"{operation.replace('_', '-')} of format {format!r} in mode {mode} is not in the "
                f"compatibility matrix (see `model-registry compat`)",
                format=format, operation=operation, mode=mode,
            )
        if not cell.supported:
            note = f" ({cell.note})" if cell.note else ""
            raise UnsupportedOperation(
                f"{operation.replace('_', '-')} of a {format} model in mode {mode} is not supported{note}. "
                f"Instead: {cell.alternative}",
                format=format, operation=operation, mode=mode, alternative=cell.alternative,
            )
        return cell

    def as_rows(self) -> list[dict]:
        """Plain data for JSON output and tables: one dict per (format, operation)."""
        rows = []
        for format in self.formats:
            for operation in OPERATIONS:
                cells = {mode: self.cell(format, operation, mode) for mode in MODES}
                if not any(cells.values()):
                    continue
                row: dict[str, object] = {"format": format, "operation": operation}
                for mode, cell in cells.items():
                    row[mode] = None if cell is None else {
                        "supported": cell.supported, "note": cell.note, "alternative": cell.alternative}
                rows.append(row)
        return rows

    def render(self, format: str | None = None) -> str:
        """A plain-text table of the matrix (or one format's row), with notes below it."""
        formats = [format] if format else self.formats
        header = ("format", "operation", "mode tf1", "mode tf2")
        lines, notes = [], []
        for fmt in formats:
            for operation in OPERATIONS:
                cells = [self.cell(fmt, operation, mode) for mode in MODES]
                if not any(cells):
                    continue
                shown = []
                for cell in cells:
                    if cell is None:
                        shown.append("-")
                        continue
                    text = cell.label
                    if cell.note or cell.alternative:
                        notes.append(cell)
                        text += f" [{len(notes)}]"
                    shown.append(text)
                lines.append((fmt, operation.replace("_", "-"), *shown))
        widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(len(header))]

        def fmt_row(r: tuple[str, ...]) -> str:
            return "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()

        out = [fmt_row(header), fmt_row(tuple("-" * w for w in widths))]
        out += [fmt_row(r) for r in lines]
        if notes:
            out.append("")
            for i, cell in enumerate(notes, 1):
                text = cell.note
                if cell.alternative:
                    text = (text + ". " if text else "") + f"Instead: {cell.alternative}"
                out.append(f"[{i}] {cell.format} {cell.operation.replace('_', '-')} {cell.mode}: {text}")
        return "\n".join(out)
