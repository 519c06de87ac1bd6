"""The contract a format adapter fulfils.

An adapter knows one on-disk model format: how to recognise a directory (or a
single file) of it, what signatures and graph variants it holds, and how to
load, fine-tune and create it in each mode. It declares its row of the
compatibility matrix as data; the core gates every call on that row before the
adapter sees it, so adapter methods never re-check the matrix.

Everything the core does differently for one format goes through this class:
which adapter claims a path or an object (``precedence``), what a page shows as
usage code (``usage``), what a Keras layer wraps (``keras_reusable``), what the
demo can run generically (``restored_object_modes``) and what error messages
say is expected (``expects``, ``creates_from``). The core itself never names a
format (``tests/test_no_format_in_core.py``).

Precedence, the one rule for every claim (``AdapterSet.detect``,
``AdapterSet.claim_file``, ``AdapterSet.for_object``): of the adapters that
claim a directory, a file or an in-memory object, the one with the highest
``precedence`` wins; on a tie, the one whose ``format`` name sorts first. The
built-ins declare 0 and recognise disjoint things; a third-party adapter for a
more specific kind of model declares a higher precedence to win over them.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from registry.errors import UnsupportedOperation
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


@dataclass(frozen=True)
class UsageSnippet:
    """One copyable block of usage code, as a model page shows it (``id`` is its HTML anchor)."""

    id: str
    title: str
    code: str
    note: str = ""


@dataclass(frozen=True)
class KerasReusable:
    """What a Keras layer (``registry.KerasLayer``, ``registry.tf_keras.KerasLayer``) wraps for one model.

    ``obj`` is a restored TensorFlow object with ``signatures`` (and ``__call__``,
    ``variables`` and ``regularization_losses`` when it implements the reusable
    API). ``default_signature`` is the signature a layer calls when it names none
    (None: ``obj.__call__``). ``owns_weights`` says whether the object's variables
    become the layer's weights (saved with it, trainable); False makes the layer
    inference-only.
    """

    obj: Any
    default_signature: str | None = None
    owns_weights: bool = True


class ConversionReport(Protocol):
    """What ``FormatAdapter.convert`` returns: what the conversion kept and left out, for people to read."""

    def summary(self) -> list[str]:
        """One line each, as the CLI prints them after a conversion."""
        ...


def registry_usage(handle: str, *, load_note: str = "", keras_code: str | None = None) -> list[UsageSnippet]:
    """The registry-API usage of a handle: ``registry.load``, then a Keras layer when ``keras_code`` is given."""
    snippets = [UsageSnippet("use-load", "registry.load", f'import registry\n\nmodel = registry.load("{handle}")\n',
                             note=load_note)]
    if keras_code is not None:
        snippets.append(UsageSnippet("use-keras", "registry.KerasLayer", keras_code))
    return snippets


class FormatAdapter(ABC):
    """Base class of format adapters. Subclasses set the class attributes and implement the methods."""

    #: Short identifier stored in the catalog (lowercase, e.g. ``"acme_onnx"``).
    format: ClassVar[str]
    #: One line for humans.
    description: ClassVar[str] = ""
    #: This format's cells of the compatibility matrix.
    matrix: ClassVar[tuple[Cell, ...]] = ()
    #: Which adapter wins when several claim the same directory, file or object: the highest; on a tie the
    #: format name that sorts first. Built-ins declare 0; a more specific adapter declares more to win over them.
    precedence: ClassVar[int] = 0
    #: What a model of this format looks like on disk, for the error when no adapter claims a path
    #: (e.g. ``"model.onnx (ONNX model)"``).
    expects: ClassVar[str] = ""
    #: The in-memory objects ``create`` accepts, for the error when no adapter accepts one (e.g. ``"an ONNX graph"``).
    creates_from: ClassVar[str] = ""
    #: Modes in which ``load`` returns TensorFlow's restored-object API (``.signatures``; callable when the
    #: model has ``__call__``), so that generic code such as ``model-registry demo`` can run it as is.
    restored_object_modes: ClassVar[tuple[str, ...]] = ()
    #: The formats ``convert`` writes this format's models as (``Registry.convert(handle, to=...)``);
    #: empty: its models convert to nothing.
    conversions: ClassVar[tuple[str, ...]] = ()

    @classmethod
    @abstractmethod
    def detect(cls, path: Path) -> bool:
        """True if ``path`` is a model directory in this format, judged from its top-level files.

        (A directory at a remote URL is checked when only its top-level files are copied, so that what is no
        model is refused before the rest is downloaded.)
        """

    @classmethod
    def detect_file(cls, path: Path) -> bool:
        """True if the single file ``path`` is a whole model in this format (default: no format is one file).

        A claimed file is published through ``from_file`` instead of being unpacked
        as an archive, and a path handle naming it loads it as it is.
        """
        return False

    def from_file(self, file: Path, target: Path) -> None:
        """Lay out the single-file model ``file`` as a model directory at ``target`` (which does not exist yet).

        The catalog stores every version as a directory; ``detect`` must claim the
        result. By default the file is copied into ``target`` under its own name.
        """
        target.mkdir(parents=True)
        shutil.copy2(file, target / Path(file).name)

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

    def convert(self, path: Path, target: Path, *, to: str, source: str, **options: Any) -> ConversionReport:
        """Write the model at ``path`` as a model directory of format ``to`` (one of ``conversions``) at ``target``.

        ``target`` does not exist yet; ``source`` names the model for what the
        conversion records (its catalog handle). Refusals (something the target format
        cannot hold faithfully) raise ``registry.errors.ConversionError`` before
        ``target`` is written. The core has checked ``to`` against ``conversions`` and
        passed the matrix gate ("load" of this format, "create" of ``to``); it publishes
        ``target`` afterwards, as a version whose parent is ``source``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement convert")

    # -- Keras layers ---------------------------------------------------------------------------

    def check_keras_layer(self, *, trainable: bool, mode: str) -> None:
        """Raise ``UnsupportedOperation`` if a Keras layer cannot wrap this format so; nothing is downloaded yet.

        It runs inside ``Registry.prepare``, right after the matrix gate. By default a
        format that does not implement ``keras_reusable`` is refused for any layer.
        """
        if type(self).keras_reusable is FormatAdapter.keras_reusable:
            operation = "fine_tune" if trainable else "load"
            alternative = f"registry.{operation}(handle, mode={mode!r})"
            raise UnsupportedOperation(
                f"a Keras layer cannot wrap a {self.format} model (its adapter provides no reusable object). "
                f"Instead: {alternative}", format=self.format, operation=operation, mode=mode, alternative=alternative)

    def keras_reusable(self, path: Path, *, mode: str) -> KerasReusable:
        """The restored object a Keras layer wraps, loaded from ``path`` into the current context."""
        raise NotImplementedError(f"{type(self).__name__} does not implement keras_reusable")

    # -- pages ----------------------------------------------------------------------------------

    def usage(self, version: Any) -> list[UsageSnippet]:
        """Registry-API usage code for ``version`` (a ``VersionPublic``), shown on its page.

        By default ``registry.load``, and ``registry.KerasLayer`` when the format
        implements ``keras_reusable``. The page adds what is the same for every
        format (client setup, tensorflow_hub and curl).
        """
        keras_code = None
        if type(self).keras_reusable is not FormatAdapter.keras_reusable:
            keras_code = f'import registry\n\nlayer = registry.KerasLayer("{version.handle}", trainable=False)\n'
        return registry_usage(version.handle, keras_code=keras_code)
