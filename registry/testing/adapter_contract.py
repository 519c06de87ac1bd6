"""The contract every format adapter passes, driven only by what the adapter declares.

The suite reads the adapter's matrix row and exercises each cell it declares:
every supported ``load``, ``fine_tune`` and ``create`` cell is run for real
through a fresh ``registry.Registry`` (an SQLite catalog and local storage in a
work folder, the adapter's plugin loaded the way an installed package is), and
every cell it leaves unsupported or does not declare at all must be refused by
the matrix gate with ``UnsupportedOperation`` (naming the declared alternative).
Detection (a directory, or a single file for a format that is one file),
inspection and publishing are checked on a model the implementer supplies; the
suite assumes nothing about any built-in format.

An implementation supplies an ``AdapterSample`` (its models and how to check
that a loaded one computes what it should) and runs each check::

    @pytest.mark.parametrize("check", AdapterContract.CHECKS)
    def test_contract(check, tmp_path):
        AdapterContract(MyAdapter, MySample(), tmp_path).run(check)

Checks in mode tf1 run inside a fresh ``tf.Graph``; the sample's callbacks run
inside the same context. TensorFlow is imported only by those checks.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, Iterator

from registry.adapter import ArtifactInfo, FormatAdapter
from registry.errors import UnsupportedOperation
from registry.matrix import OPERATIONS
from registry.modes import MODES
from registry.testing import ContractFailure, require


class AdapterSample:
    """What an implementation gives the contract: models of its format and how to check them. Subclass it.

    ``model_path`` and ``foreign_path`` may build their models under ``workdir``.
    """

    #: Names of signatures ``inspect`` must find in the model.
    signature_names: tuple[str, ...] = ()

    def model_path(self, workdir: Path) -> Path:
        """A model in the adapter's format: a directory, or one file for a single-file format."""
        raise NotImplementedError

    def foreign_path(self, workdir: Path) -> Path | None:
        """A model in another format, which the adapter must not claim (None: skip that part)."""
        return None

    def check_loaded(self, model: Any, mode: str, model_path: Path) -> None:
        """Raise (any ``AssertionError``) unless ``model``, loaded in ``mode``, computes what the model should."""
        raise NotImplementedError

    def check_fine_tuned(self, model: Any, mode: str, model_path: Path) -> None:
        """Raise unless ``model``, from ``fine_tune`` in ``mode``, has something to train. By default: not None."""
        require(model is not None, f"fine_tune in mode {mode} returned None")

    def make_object(self, mode: str, model_path: Path, registry: Any) -> Any:
        """An in-memory model the adapter's ``create`` writes, built in ``mode``'s context; None if there is none.

        Needed for each supported ``create`` cell; ``registry`` is the contract's registry
        (for objects made from a published model).
        """
        return None


def _mode_context(mode: str):
    """A fresh ``tf.Graph`` for mode tf1, nothing for tf2."""
    if mode != "tf1":
        return contextlib.nullcontext()
    import tensorflow as tf

    return tf.Graph().as_default()


class AdapterContract:
    """The checks for ``adapter_cls`` on ``sample``; ``workdir`` is a new or empty folder the checks fill.

    ``plugin_manager`` is the manager the contract's registry uses (default: a fresh
    one with the built-ins and every installed entry point, as a user gets), which
    must register ``adapter_cls``.
    """

    CHECKS = ("check_declaration", "check_registered", "check_detect", "check_inspect", "check_publish",
              "check_load", "check_fine_tune", "check_create", "check_refusals")
    _FORMAT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

    def __init__(self, adapter_cls: type[FormatAdapter], sample: AdapterSample, workdir: Path, *, plugin_manager=None):
        self.adapter_cls = adapter_cls
        self.sample = sample
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._plugin_manager = plugin_manager
        self._registry: Any = None
        self._model: Path | None = None
        self._handle: str | None = None

    def run(self, check: str) -> None:
        require(check in self.CHECKS, f"no adapter contract check named {check!r}")
        getattr(self, check)()

    # -- what the checks share --------------------------------------------------------------------

    @property
    def format(self) -> str:
        return self.adapter_cls.format

    @property
    def registry(self):
        """A registry of its own in ``workdir``: SQLite catalog, local storage, cache."""
        if self._registry is None:
            import registry as public  # the public package, as a user reaches it (never registry.api)
            from registry.plugin_manager import make_plugin_manager

            root = self.workdir / "registry"
            (root / "artifacts").mkdir(parents=True)
            self._registry = public.Registry(database_url=f"sqlite:///{root / 'catalog.db'}",
                                      storage_url=str(root / "artifacts"), cache_dir=root / "cache",
                                      plugin_manager=self._plugin_manager or make_plugin_manager())
        return self._registry

    @property
    def model(self) -> Path:
        if self._model is None:
            folder = self.workdir / "sample"
            folder.mkdir(exist_ok=True)
            self._model = Path(self.sample.model_path(folder))
        return self._model

    def published(self) -> str:
        """The handle of the sample model, published once."""
        if self._handle is None:
            record = self.registry.publish(self.model, name="contract/model", description="adapter contract")
            require(record.format == self.format, f"publishing {self.model} recorded format {record.format!r}")
            self._handle = record.handle
        return self._handle

    def cells(self, operation: str, *, supported: bool) -> list[str]:
        """The modes in which the adapter declares ``operation`` supported (or, with False, does not)."""
        declared = {(c.operation, c.mode): c for c in self.adapter_cls.matrix}
        return [mode for mode in MODES
                if (declared.get((operation, mode)) is not None and declared[(operation, mode)].supported) == supported]

    @contextlib.contextmanager
    def _refused(self, operation: str, mode: str) -> Iterator[None]:
        cell = next((c for c in self.adapter_cls.matrix if (c.operation, c.mode) == (operation, mode)), None)
        try:
            yield
        except UnsupportedOperation as error:
            require((error.format, error.operation, error.mode) == (self.format, operation, mode),
                    f"the refusal of {operation} in mode {mode} names {(error.format, error.operation, error.mode)}")
            if cell is not None:
                require(error.alternative == cell.alternative,
                        f"the refusal of {operation} in mode {mode} offers {error.alternative!r}, "
                        f"not the declared {cell.alternative!r}")
            return
        raise ContractFailure(f"{operation} of {self.format} in mode {mode} is not declared supported, "
                              "but it was not refused with UnsupportedOperation")

    # -- checks -----------------------------------------------------------------------------------

    def check_declaration(self) -> None:
        """A ``FormatAdapter`` with a format name, a description, a matrix row of its own and sound declarations."""
        cls = self.adapter_cls
        require(isinstance(cls, type) and issubclass(cls, FormatAdapter), f"{cls!r} is not a FormatAdapter subclass")
        require(isinstance(getattr(cls, "format", None), str) and self._FORMAT_NAME.match(cls.format),
                f"{cls.__name__}.format must be a lowercase identifier, not {getattr(cls, 'format', None)!r}")
        require(cls.description, f"{cls.__name__} has no description")
        require(isinstance(cls.precedence, int), f"{cls.__name__}.precedence must be an int")
        keys = [(c.operation, c.mode) for c in cls.matrix]
        require(keys, f"{cls.__name__} declares no matrix cell")
        require(len(keys) == len(set(keys)), f"{cls.__name__} declares a matrix cell twice")
        require(all(c.format == cls.format for c in cls.matrix), f"{cls.__name__} declares cells of another format")
        require(all(op in OPERATIONS and mode in MODES for op, mode in keys), f"{cls.__name__}: unknown cells {keys}")
        supported_loads = set(self.cells("load", supported=True))
        require(set(cls.restored_object_modes) <= supported_loads,
                f"restored_object_modes {cls.restored_object_modes} name modes where load is not supported")

    def check_registered(self) -> None:
        """The plugin registers the adapter: the registry's adapters and matrix have it."""
        adapters = self.registry.adapters
        require(self.format in adapters, f"no installed plugin registers format {self.format!r} "
                                         f"(registered: {adapters.formats})")
        require(type(adapters.get(self.format)) is self.adapter_cls,
                f"format {self.format!r} is registered by {type(adapters.get(self.format)).__name__}")
        require(self.registry.matrix.row(self.format), f"the registry's matrix has no row for {self.format!r}")

    def check_detect(self) -> None:
        """It claims its model (and wins it in the registry's adapter set), never another format or an empty folder."""
        cls, path = self.adapter_cls, self.model
        adapters = self.registry.adapters
        if path.is_file():
            require(cls.detect_file(path), f"{cls.__name__}.detect_file does not claim its model {path}")
            require(adapters.claim_file(path) is adapters.get(self.format),
                    f"the registry gives {path} to another adapter; raise {cls.__name__}.precedence")
            laid_out = self.workdir / "laid-out"
            cls().from_file(path, laid_out)
            require(cls.detect(laid_out), f"{cls.__name__}.detect does not claim what from_file made of {path}")
        else:
            require(cls.detect(path), f"{cls.__name__}.detect does not claim its model directory {path}")
        require(adapters.detect(path) is adapters.get(self.format),
                f"the registry's adapters give {path} to {adapters.detect(path).format}; "
                f"raise {cls.__name__}.precedence")
        empty = self.workdir / "empty"
        empty.mkdir()
        require(not cls.detect(empty), f"{cls.__name__}.detect claims an empty directory")
        foreign_folder = self.workdir / "foreign"
        foreign_folder.mkdir()
        foreign = self.sample.foreign_path(foreign_folder)
        if foreign is not None:
            foreign = Path(foreign)
            claimed = cls.detect_file(foreign) if foreign.is_file() else cls.detect(foreign)
            require(not claimed, f"{cls.__name__} claims {foreign}, a model of another format")

    def check_inspect(self) -> None:
        """``inspect`` reads its format, tag sets and signatures with real dtypes, without loading."""
        path = self.model
        if path.is_file():
            path = self.workdir / "inspected"
            self.adapter_cls().from_file(self.model, path)
        info = self.adapter_cls().inspect(path)
        require(isinstance(info, ArtifactInfo), f"inspect returned {type(info).__name__}, not ArtifactInfo")
        require(info.format == self.format, f"inspect says format {info.format!r}")
        require(info.tag_sets, "inspect found no tag set")
        names = {s.name for s in info.signatures}
        require(set(self.sample.signature_names) <= names,
                f"inspect found signatures {sorted(names)}, not all of {sorted(self.sample.signature_names)}")
        for signature in info.signatures:
            require(signature.tags in info.tag_sets, f"signature {signature.name} has tags outside the tag sets")
            for tensor in [*signature.inputs.values(), *signature.outputs.values()]:
                require(isinstance(tensor.dtype, str) and tensor.dtype, f"signature {signature.name}: no dtype name")

    def check_publish(self) -> None:
        """A publish records what ``inspect`` reads, and the catalog gives it back."""
        handle = self.published()
        record = self.registry.get_version(handle)
        path = self.registry.resolve_path(handle)
        info = self.adapter_cls().inspect(path)
        require({s.name for s in record.signatures} == {s.name for s in info.signatures},
                "the catalog's signatures differ from what inspect reads")
        require(sorted(map(sorted, info.tag_sets)) == sorted(map(sorted, record.tag_sets)),
                "the catalog's tag sets differ from what inspect reads")
        require(self.registry.adapters.detect(path) is self.registry.adapters.get(self.format),
                f"the published version's files are not claimed by {self.adapter_cls.__name__}")

    def check_load(self) -> None:
        """Every supported load cell: by catalog handle and by path, the sample checks what it computes."""
        modes = self.cells("load", supported=True)
        handle = self.published()
        for mode in modes:
            for source in (handle, str(self.model)):
                with _mode_context(mode):
                    self.sample.check_loaded(self.registry.load(source, mode=mode), mode, self.model)

    def check_fine_tune(self) -> None:
        """Every supported fine-tune cell gives the sample something to train."""
        handle = self.published()
        for mode in self.cells("fine_tune", supported=True):
            with _mode_context(mode):
                self.sample.check_fine_tuned(self.registry.fine_tune(handle, mode=mode), mode, self.model)

    def check_create(self) -> None:
        """Every supported create cell: the sample's object is accepted, published in that mode and loads back."""
        adapters = self.registry.adapters
        for mode in self.cells("create", supported=True):
            with _mode_context(mode):
                obj = self.sample.make_object(mode, self.model, self.registry)
                require(obj is not None, f"create is supported in mode {mode}: the sample must make an object")
                require(self.adapter_cls().accepts(obj), f"the adapter does not accept the sample's {type(obj)}")
                require(adapters.for_object(obj) is adapters.get(self.format),
                        f"the registry gives a {type(obj).__name__} to {adapters.for_object(obj).format}; "
                        f"raise {self.adapter_cls.__name__}.precedence")
                record = self.registry.publish(obj, name=f"contract/created-{mode.replace('_', '-')}", mode=mode)
            require(record.format == self.format, f"creating in mode {mode} recorded format {record.format!r}")
            path = self.registry.resolve_path(record.handle)
            require(adapters.detect(path) is adapters.get(self.format),
                    f"what create wrote in mode {mode} is not claimed by the adapter")

    def check_refusals(self) -> None:
        """Every cell not declared supported (unsupported, or not declared at all) is refused by the gate."""
        for operation in OPERATIONS:
            for mode in self.cells(operation, supported=False):
                with self._refused(operation, mode):
                    self.registry.check(self.format, operation, mode)
                if operation in ("load", "fine_tune"):
                    handle = self.published()
                    with _mode_context(mode), self._refused(operation, mode):
                        getattr(self.registry, operation)(handle, mode=mode)
                elif operation == "create":
                    with _mode_context(mode):
                        obj = self.sample.make_object(mode, self.model, self.registry)
                        if obj is not None and self.adapter_cls().creation_mode(obj, mode) == mode:
                            with self._refused(operation, mode):
                                self.registry.publish(obj, name="contract/refused", mode=mode)


__all__ = ["AdapterContract", "AdapterSample", "ContractFailure"]
