"""The plugin manager: built-in plugins and third-party ones, loaded once, lazily.

Built-in adapters and plugins are listed in ``DEFAULT_PLUGINS`` and registered
exactly as a third-party package registered through the ``model_registry``
entry-point group would be. ``MODEL_REGISTRY_LOAD_PLUGINS`` (comma-separated
names) loads only the named ones, which tests use to ignore whatever else is
installed.

Finding third-party plugins is the one part of building the manager whose cost
grows with the environment: ``importlib.metadata.entry_points`` builds a
``Distribution`` and parses ``entry_points.txt`` for every installed
distribution. ``_group_may_exist`` first reads those files as bytes, straight
from the ``sys.path`` directories, and only if one of them mentions the group
(or something it cannot see through, such as a zip file, an egg or another
distribution finder, is on the path) asks ``importlib.metadata``, which then
decides exactly as before. It keeps no cache, so a plugin installed or removed
is seen by the next manager built.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from pathlib import Path

import pluggy

from registry import hookspecs
from registry.adapter import FormatAdapter
from registry.config import plugins_to_load, unknown_plugins_error
from registry.errors import FormatError, PluginError
from registry.matrix import CompatibilityMatrix

ENTRY_POINT_GROUP = "model_registry"

#: Module paths of the built-in plugins; each is registered under its module path.
DEFAULT_PLUGINS = (
    "registry.adapters.tf2_saved_model",
    "registry.adapters.tf1_hub",
    "registry.plugins.signatures",
)

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


def make_plugin_manager(*, load_defaults: bool = True, load_entry_points: bool = True,
                        only: set[str] | None = None) -> pluggy.PluginManager:
    """A fresh plugin manager; ``only`` limits it to plugins of those names."""
    pm = pluggy.PluginManager("model_registry")
    pm.add_hookspecs(hookspecs)
    if load_defaults:
        for module_path in DEFAULT_PLUGINS:
            if only is not None and module_path not in only:
                continue
            pm.register(importlib.import_module(module_path), name=module_path)
    # With ``only`` naming nothing beyond what is registered already, no entry point could be added.
    if load_entry_points and not (only is not None and all(pm.get_plugin(name) is not None for name in only)):
        for ep in group_entry_points(ENTRY_POINT_GROUP):
            if only is not None and ep.name not in only:
                continue
            if pm.get_plugin(ep.name) is not None:
                continue
            pm.register(ep.load(), name=ep.name)
    if only is not None and load_entry_points:
        # A misspelt name would otherwise load nothing, and every model would be "in no registered format ()".
        unknown = {name for name in only if pm.get_plugin(name) is None and name not in DEFAULT_PLUGINS}
        if unknown:
            installed = [*DEFAULT_PLUGINS, *sorted({ep.name for ep in group_entry_points(ENTRY_POINT_GROUP)})]
            raise unknown_plugins_error(unknown, installed)
    return pm


def group_entry_points(group: str):
    """``importlib.metadata.entry_points(group=group)``, without the full scan when no distribution can have one."""
    if not _group_may_exist(group):
        return ()
    from importlib.metadata import entry_points

    return entry_points(group=group)


_METADATA_SUFFIXES = (".dist-info", ".egg-info")


def _group_may_exist(group: str, path: list | None = None) -> bool:
    """False only if no distribution ``importlib.metadata`` finds on ``path`` (default sys.path) declares ``group``.

    It looks where ``importlib.metadata``'s path finder looks (every ``*.dist-info``
    and ``*.egg-info`` in each directory of the path, names compared case-blind)
    for ``[group]`` in the bytes of each ``entry_points.txt``, and answers True on
    anything it does not follow the same way: a path entry that exists but is not
    a directory (a zip file), an ``.egg``, an unreadable ``entry_points.txt``, or a
    finder other than the standard one offering ``find_distributions``. True means
    "ask ``importlib.metadata``": a superset of the distributions that declare the
    group, never fewer.
    """
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and getattr(finder, "find_distributions", None) is not None:
            return True
    # importlib.metadata takes a stripped line "[...]" as a section named by stripping the brackets off it,
    # so a line that opens section ``group`` always contains "[group]".
    needle = f"[{group}]".encode()
    for entry in sys.path if path is None else path:
        root = os.fspath(entry) if isinstance(entry, (str, os.PathLike)) else None
        if root is None:
            return True
        root = root or "."
        if os.path.basename(root).lower().endswith(".egg"):
            return True
        try:
            names = os.listdir(root)
        except OSError:
            if os.path.exists(root):  # a zip file, or a directory it cannot list
                return True
            continue
        for name in names:
            if not name.lower().endswith(_METADATA_SUFFIXES):
                continue
            try:
                with open(os.path.join(root, name, "entry_points.txt"), "rb") as file:
                    if needle in file.read():
                        return True
            except (FileNotFoundError, NotADirectoryError):
                continue  # no entry points, or an egg-info file (PKG-INFO itself): nothing to declare
            except OSError:
                return True
    return False


def gather(pm: pluggy.PluginManager, hook_name: str) -> list[tuple[object, str]]:
    """Call every plugin's ``hook_name(register=...)``; return (what it registered, plugin name) in hook order.

    The host decides what to accept and how to treat clashes, knowing which plugin gave what.
    """
    gathered: list[tuple[object, str]] = []
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        impl.function(register=lambda item, _plugin=impl.plugin_name: gathered.append((item, _plugin)))
    return gathered


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = make_plugin_manager(only=plugins_to_load())
        return _manager


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests; after installing a plugin at run time)."""
    global _manager
    with _lock:
        _manager = None


class AdapterSet:
    """The adapters registered through a plugin manager, by format name, and their matrix.

    Which adapter claims a model directory, a single file or an in-memory object
    is decided by one rule, ``FormatAdapter``'s precedence: of the adapters that
    claim it, the highest ``precedence`` wins, and on a tie the format name that
    sorts first (registration order, which depends on how entry points are
    listed, never decides). A directory is claimed by an adapter's ``detect``
    or, for plugins written before adapters declared it, by a ``claim_directory``
    hook naming the adapter's format; both count as the same claim.
    """

    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self._adapters: dict[str, FormatAdapter] = {}
        self._sources: dict[str, str] = {}
        for adapter_cls, plugin_name in gather(pm, "register_adapters"):
            self._add(adapter_cls, plugin_name)
        self.matrix = CompatibilityMatrix(cell for a in self._adapters.values() for cell in a.matrix)
        #: Every adapter, in the order claims are settled: precedence first, then format name.
        self.ranked: tuple[FormatAdapter, ...] = tuple(
            sorted(self._adapters.values(), key=lambda a: (-a.precedence, a.format)))

    def _add(self, adapter_cls, plugin_name: str) -> None:
        if not (isinstance(adapter_cls, type) and issubclass(adapter_cls, FormatAdapter)):
            raise PluginError(f"plugin {plugin_name} registered {adapter_cls!r}, which is not a FormatAdapter subclass")
        name = adapter_cls.format
        if name in self._adapters:
            raise PluginError(
                f"format {name!r} is registered by both {self._sources[name]} and {plugin_name}; "
                f"uninstall one or limit plugins with MODEL_REGISTRY_LOAD_PLUGINS")
        if not isinstance(adapter_cls.precedence, int):
            raise PluginError(f"adapter for {name!r} from {plugin_name} declares precedence "
                              f"{adapter_cls.precedence!r}, which is not an int")
        for cell in adapter_cls.matrix:
            if cell.format != name:
                raise PluginError(f"adapter for {name!r} from {plugin_name} declares a matrix cell for {cell.format!r}")
        self._adapters[name] = adapter_cls()
        self._sources[name] = plugin_name

    def __contains__(self, format: str) -> bool:
        return format in self._adapters

    def __iter__(self):
        return iter(self._adapters.values())

    @property
    def formats(self) -> list[str]:
        return sorted(self._adapters)

    def source(self, format: str) -> str:
        return self._sources[format]

    def get(self, format: str) -> FormatAdapter:
        try:
            return self._adapters[format]
        except KeyError:
            raise FormatError(
                f"no adapter is registered for format {format!r} (registered: {', '.join(self.formats) or 'none'}); "
                f"install the plugin that provides it") from None

    def _expected(self) -> str:
        return " or ".join(a.expects for a in self.ranked if a.expects) or "a format some adapter declares"

    def detect(self, path) -> FormatAdapter:
        """The adapter that claims ``path``: a model directory, or a single-file model (``claim_file``)."""
        path = Path(path)
        if path.is_file():
            adapter = self.claim_file(path)
            if adapter is None:
                raise FormatError(f"{path} is a file no registered adapter claims as a model "
                                  f"({', '.join(self.formats)}); expected a model directory: {self._expected()}")
            return adapter
        hooked = {format for format in self.pm.hook.claim_directory(path=path) if format is not None}
        unknown = hooked - set(self._adapters)
        if unknown:
            raise PluginError(f"a plugin claims {path} for format(s) {sorted(unknown)}, which no adapter registers")
        for adapter in self.ranked:
            if adapter.format in hooked or adapter.detect(path):
                return adapter
        raise FormatError(
            f"{path} is not a model directory in any registered format ({', '.join(self.formats)}): "
            f"expected {self._expected()}")

    def claim_file(self, path) -> FormatAdapter | None:
        """The adapter that reads the single file ``path`` as a whole model, or None (it may be an archive)."""
        path = Path(path)
        return next((a for a in self.ranked if a.detect_file(path)), None)

    def for_object(self, obj) -> FormatAdapter:
        """The adapter that can create a model directory from the in-memory ``obj``."""
        for adapter in self.ranked:
            if adapter.accepts(obj):
                return adapter
        kinds = [a.creates_from for a in self.ranked if a.creates_from]
        raise FormatError(f"no registered adapter can save an object of type {type(obj).__name__}; "
                          f"pass {', '.join(kinds + ['a model directory'])}")
