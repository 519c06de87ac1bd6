"""The layering holds: no import cycle anywhere, nothing imports upward, adapters use only the core's edge.

Every ``import`` statement counts, including those inside functions (a cycle
"held together by function-level imports" is still a cycle); imports under
``if TYPE_CHECKING:`` do not, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The repository's package folders and the names they are imported under (registry/adapters and
#: registry/plugins are symlinks to the top-level folders, so each file is read once, from its own folder).
PACKAGES = {"registry": ROOT / "registry", "registry.adapters": ROOT / "adapters", "registry.plugins": ROOT / "plugins"}
#: Where the built-in plugins live: the core is everything else under ``registry``.
PLUGIN_PACKAGES = ("registry.adapters", "registry.plugins")


def _module_name(package: str, folder: Path, path: Path) -> str:
    parts = [package, *path.relative_to(folder).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            if any(part in ("adapters", "plugins") for part in path.relative_to(folder).parts[:1]) \
                    and package == "registry":
                continue  # the symlinks: read under their own package name
            found[_module_name(package, folder, path)] = path
    return found


def _plugin_package(name: str) -> str | None:
    """``registry.adapters`` or ``registry.plugins`` for a module in one, else None (the core)."""
    return next((p for p in PLUGIN_PACKAGES if name == p or name.startswith(p + ".")), None)


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imported_names(tree: ast.AST, module: str, is_package: bool, modules: dict):
    """Every module an import statement outside ``if TYPE_CHECKING:`` names.

    ``from package import submodule`` names the submodule; ``from module import attribute`` the module.
    """
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if _is_type_checking_block(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".")
                    anchor = anchor[: len(anchor) - child.level + (1 if is_package else 0)]
                    base = ".".join(anchor + ([base] if base else []))
                names = [f"{base}.{alias.name}" for alias in child.names]
                submodules = [name for name in names if name in modules]
                yield from submodules
                if len(submodules) < len(names):
                    yield base
            stack.append(child)


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = {t for t in _imported_names(tree, name, path.name == "__init__.py", modules) if t in modules}
        graph[name] = targets - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, result, counter = {}, {}, set(), [], [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def test_the_graph_is_read_from_real_imports():
    graph = import_graph()
    assert "registry.errors" in graph["registry.api"] or "registry.handles" in graph["registry.api"]
    assert "registry.adapters.tf1_hub.format" in graph["registry.adapters.tf1_hub.spec"]


def test_there_is_no_import_cycle():
    assert _cycles(import_graph()) == []


def test_only_the_public_edge_imports_registry_api():
    """Lower layers get collaborators; they never reach for the Registry or the default instance.

    The edges that build a Registry are the CLI and the server's application
    factory; the server's routes get it from the application's state.
    """
    importers = sorted(name for name, targets in import_graph().items() if "registry.api" in targets)
    assert all(name.startswith("registry.cli") or name == "registry.server.app" for name in importers), importers


def test_the_core_does_not_import_adapters_or_plugins():
    """Built-in adapters and plugins are ordinary plugins: the core names them only in DEFAULT_PLUGINS."""
    offenders = {name: sorted(t for t in targets if _plugin_package(t))
                 for name, targets in import_graph().items() if not _plugin_package(name)}
    assert {name: targets for name, targets in offenders.items() if targets} == {}


def test_no_plugin_reads_another_plugins_internals():
    graph = import_graph()
    for name, targets in graph.items():
        top = ".".join(name.split(".")[:3])
        if not _plugin_package(name):
            continue
        # Shared helpers directly under adapters/ (registry.adapters.saved_model_file) are for every adapter.
        plugin_packages = {".".join(t.split(".")[:3]) for t in graph
                           if t.count(".") >= 3 and _plugin_package(t)}
        foreign = [t for t in targets if ".".join(t.split(".")[:3]) in plugin_packages
                   and not t.startswith(top)]
        assert foreign == [], f"{name} imports {foreign}"


def test_the_tf1_adapter_modules_form_a_line():
    """format -> signatures -> instantiate -> writer -> spec -> module -> export -> image -> adapter."""
    graph = import_graph()
    tf1 = {name: {t for t in targets if t.startswith("registry.adapters.tf1_hub.")}
           for name, targets in graph.items() if name.startswith("registry.adapters.tf1_hub.")}
    assert _cycles(tf1) == []
    assert "registry.adapters.tf1_hub.module" not in graph["registry.adapters.tf1_hub.spec"]
    assert "registry.adapters.tf1_hub.export" not in graph["registry.adapters.tf1_hub.module"]
