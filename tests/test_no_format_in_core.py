"""Formats live in their adapters: the core (``registry/`` minus the adapters and plugins) names none of them.

Everything the core does differently for one format goes through ``FormatAdapter``
(precedence, usage snippets, the Keras layer's object and refusal, error texts,
what the demo can run), so a new format is a new adapter package and nothing
else. This test reads every module of the core, token by token, and fails on:

- a built-in format's name (``tf1_hub``, ``tf2_saved_model``, as the built-in
  adapters declare them) or one of their marker files (``saved_model.pb``,
  ``tfhub_module.pb``), in code, strings, docstrings or comments;
- an import of ``registry.adapters`` or ``registry.plugins`` (statement, or a
  string naming such a module for ``importlib``).

Two places are exempt, each by its exact entries: ``DEFAULT_PLUGINS`` in
``registry/plugin_manager.py`` (how the built-ins are registered, as a
third-party package would be through its entry point) and, in
``registry/__init__.py``, the hub-compatible public names below, which keep
``registry.Module`` & co. working as tensorflow_hub 0.15's ``hub.Module`` API did.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from registry.plugin_manager import DEFAULT_PLUGINS, AdapterSet, make_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "registry"
#: Inside registry/ but not the core: the symlinked built-in plugins, and package data (example models).
NOT_CORE = ("adapters", "plugins", "demo_models")
#: registry/__init__.py's public names that stand for tensorflow_hub 0.15's API (hub.Module & co.).
HUB_COMPATIBLE_NAMES = ("Module", "ModuleSpec", "load_module_spec", "create_module_spec", "eval_function_for_module",
                        "add_signature", "attach_message", "ImageModuleInfo", "attach_image_module_info",
                        "get_expected_image_size", "get_num_image_channels")
MARKER_FILES = ("saved_model.pb", "tfhub_module.pb")
PLUGIN_MODULE = re.compile(r"^registry\.(adapters|plugins)(\.|:|$)")


def builtin_formats() -> list[str]:
    """The format names the built-in adapters declare (read from them, not written out here)."""
    return AdapterSet(make_plugin_manager(load_entry_points=False)).formats


def forbidden() -> re.Pattern:
    names = [*builtin_formats(), *MARKER_FILES, "tfhub_module"]
    return re.compile("|".join(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9_])" for name in names))


def core_files() -> list[Path]:
    found = []
    for path in sorted(CORE.rglob("*")):
        relative = path.relative_to(CORE)
        if relative.parts[0] in NOT_CORE or "__pycache__" in relative.parts or not path.is_file():
            continue
        if path.suffix in (".py", ".html", ".js", ".css", ".txt", ".toml"):
            found.append(path)
    return found


def _lazy_values(tree: ast.Module, names) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_LAZY" for t in node.targets):
            lazy = ast.literal_eval(node.value)
            missing = set(names) - set(lazy)
            assert not missing, f"registry/__init__.py no longer exports {sorted(missing)}: update this test"
            return {lazy[name] for name in names}
    raise AssertionError("registry/__init__.py has no _LAZY mapping")


def exempt_strings(path: Path, tree: ast.Module) -> set[str]:
    """The string constants a file may hold although they name a built-in."""
    if path == CORE / "__init__.py":
        return _lazy_values(tree, HUB_COMPATIBLE_NAMES)
    if path == CORE / "plugin_manager.py":
        return set(DEFAULT_PLUGINS)
    return set()


def offences(path: Path, source: str, pattern: re.Pattern) -> list[str]:
    if path.suffix != ".py":
        return [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                for n, line in enumerate(source.splitlines(), 1) if pattern.search(line)]
    tree = ast.parse(source, str(path))
    exempt = exempt_strings(path, tree)
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in (tokenize.STRING, tokenize.COMMENT, tokenize.NAME):
            continue
        if token.type == tokenize.STRING:
            try:
                value = ast.literal_eval(token.string)
            except (ValueError, SyntaxError):  # f-strings: checked as written
                value = token.string
            if value in exempt:
                continue
            if isinstance(value, str) and PLUGIN_MODULE.match(value):
                found.append(f"{path.relative_to(ROOT)}:{token.start[0]}: names module {value!r}")
                continue
        if pattern.search(token.string):
            found.append(f"{path.relative_to(ROOT)}:{token.start[0]}: {token.string.strip()[:100]}")
    for node in ast.walk(tree):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found += [f"{path.relative_to(ROOT)}:{node.lineno}: imports {m}" for m in modules if PLUGIN_MODULE.match(m)]
    return found


def test_the_core_names_no_builtin_format_and_imports_no_adapter():
    pattern = forbidden()
    files = core_files()
    assert CORE / "api.py" in files and CORE / "keras" / "_saved_model.py" in files  # the walk sees the core
    found = [o for path in files for o in offences(path, path.read_text(), pattern)]
    assert found == [], "the core names built-in formats (move the knowledge into the adapter):\n" + "\n".join(found)


def test_the_check_catches_each_kind_of_mention(tmp_path):
    """The scanner is not vacuous: a format name in code, a string, a comment, a marker file or an import is caught."""
    pattern = forbidden()
    samples = {
        'if version.format == "tf1_hub":\n    pass\n': 1,
        "TF2 = 'tf2_saved_model'  # the default\n": 1,
        "# anything with tfhub_module.pb\n": 1,
        'NAME = "saved_model.pb"\n': 1,
        "from registry.adapters.tf1_hub.module import Module\n": 1,
        'import importlib\nimportlib.import_module("registry.plugins.signatures")\n': 1,
        # Not format names: a task and TensorFlow's own module.
        'TASK = "reusable_saved_model"\nimport tensorflow as tf\nload = tf.saved_model.load\n': 0,
    }
    for source, expected in samples.items():
        found = offences(CORE / "sample.py", source, pattern)  # never written: the name is for messages only
        assert len(found) >= 1 if expected else found == [], (source, found)


def test_exemptions_are_exact():
    """Only DEFAULT_PLUGINS and the hub-compatible names are exempt; another entry naming a built-in is not."""
    pattern = forbidden()
    init = (CORE / "__init__.py").read_text()
    extra = init.replace('"KerasLayer": "registry.keras.layer:KerasLayer",',
                         '"KerasLayer": "registry.keras.layer:KerasLayer",\n    "Other": "registry.adapters.tf1_hub.x:Y",')
    assert extra != init
    assert offences(CORE / "__init__.py", init, pattern) == []
    assert len(offences(CORE / "__init__.py", extra, pattern)) == 1
