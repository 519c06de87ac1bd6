"""The contract a format adapter fulfils.

An adapter knows one on-disk model format: how to recognise a directory of it,
what signatures and graph variants it holds, and how to load, fine-tune and
create it in each mode. It declares its row of the compatibility matrix as data;
the core gates every call on that row before the adapter sees it, so adapter
methods never re-check the matrix.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from registry.matrix import Cell


@dataclass(frozen=True)
class TensorInfo:
    """dtype name (``float32``), shape with ``None`` for unknown dims (``None`` for unknown rank), kind."""

    dtype: str
    shape: tuple[int | None, ...] | None
    kind: str = "dense"  # "dense", "sparse" or "ragged"

    def to_json(self) -> dict:
        return {"dtype": self.dtype, "shape": None if self.shape is None else list(self.shape), "kind": self.kind}

    @classmethod
    def from_json(cls, data: dict) -> "TensorInfo":
        shape = data.get("shape")
        return cls(dtype=data["dtype"], shape=None if shape is None else tuple(shape), kind=data.get("kind", "dense"))


@dataclass(frozen=True)
class SignatureInfo:
    """One named signature of one graph variant (TF2 models use the empty tag set)."""

    name: str
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ArtifactInfo:
    """What an adapter read from a model directory, to be recorded in the catalog."""

    format: str
    tag_sets: tuple[frozenset[str], ...] = (frozenset(),)
    signatures: tuple[SignatureInfo, ...] = ()
    #: Format-specific facts worth recording (e.g. an attached image_module_info).
    metadata: dict[str, Any] = field(default_factory=dict)


class FormatAdapter(ABC):
    """Base class of format adapters. Subclasses set the class attributes and implement the methods."""

    #: Short identifier stored in the catalog, e.g. ``"tf2_saved_model"``.
    format: ClassVar[str]
    #: One line for humans.
    description: ClassVar[str] = ""
    #: This format's cells of the compatibility matrix.
    matrix: ClassVar[tuple[Cell, ...]] = ()

    @classmethod
    @abstractmethod
    def detect(cls, path: Path) -> bool:
        """True if ``path`` is a model directory in this format."""

    @abstractmethod
    def inspect(self, path: Path) -> ArtifactInfo:
        """Read graph variants and signatures from a model directory without running it."""

    @abstractmethod
    def load(self, path: Path, *, mode: str, **options: Any) -> Any:
        """Load the model for inference in ``mode`` ("tf1": into the current graph; "tf2": eagerly)."""

    def fine_tune(self, path: Path, *, mode: str, **options: Any) -> Any:
        """Load the model with its variables trainable, ready for a training loop in ``mode``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement fine_tune")

    def accepts(self, obj: Any) -> bool:
        """True if ``create`` can write ``obj`` (an in-memory model) as a model directory."""
        return False

    def creation_mode(self, obj: Any, mode: str) -> str:
        """The mode ``create`` builds ``obj`` in, which the matrix gate checks: by default the caller's.

        An adapter whose objects are always built the same way whatever the caller's
        mode (a TF1 module spec is exported in a graph of its own) says so here.
        """
        return mode

    def create(self, obj: Any, path: Path, *, mode: str, **options: Any) -> None:
        """Write the in-memory model ``obj`` as a model directory at ``path`` (which does not exist yet)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement create")
