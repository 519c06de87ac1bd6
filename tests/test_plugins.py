"""Plugins: built-ins register like third parties; a toy third-party format loads end to end."""

import inspect
import json
from pathlib import Path

import pytest

import registry
from registry import hookspecs
from registry.errors import FormatError, PluginError
from registry.plugin_manager import DEFAULT_PLUGINS, ENTRY_POINT_GROUP, AdapterSet, make_plugin_manager

TOY_PLUGIN = '''
"""A third-party adapter for a made-up format: a JSON file holding a scale factor."""
import json
from pathlib import Path

import registry
from registry.adapter import ArtifactInfo, FormatAdapter, SignatureInfo, TensorInfo
from registry.matrix import Cell


class ScaledModel:
    def __init__(self, scale):
        self.scale = scale

    def __call__(self, x):
        return [v * self.scale for v in x]


class ToyAdapter(FormatAdapter):
    format = "toy_scale"
    description = "a JSON file with a scale factor"
    matrix = (
        Cell(format, "load", "tf2", True, "plain Python"),
        Cell(format, "load", "tf1", False, "no graphs here", alternative="load in mode tf2"),
    )

    @classmethod
    def detect(cls, path):
        return (Path(path) / "toy.json").is_file()

    def inspect(self, path):
        sig = SignatureInfo("default", {"x": TensorInfo("float32", (None,))}, {"y": TensorInfo("float32", (None,))})
        return ArtifactInfo(format=self.format, signatures=(sig,))

    def load(self, path, *, mode, **options):
        return ScaledModel(json.loads((Path(path) / "toy.json").read_text())["scale"])


@registry.hookimpl
def register_adapters(register):
    register(ToyAdapter)


@registry.hookimpl
def claim_directory(path):
    return ToyAdapter.format if ToyAdapter.detect(path) else None
'''


@pytest.fixture
def toy_distribution(tmp_path, monkeypatch):
    """Install a real distribution (dist-info with an entry point) for the toy plugin on sys.path."""
    site = tmp_path / "site"
    (site / "toy_registry_plugin").mkdir(parents=True)
    (site / "toy_registry_plugin" / "__init__.py").write_text(TOY_PLUGIN)
    dist = site / "toy_registry_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-registry-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ntoy = toy_registry_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    yield site


def test_a_third_party_adapter_loads_through_the_entry_point(toy_distribution, registry_env, tmp_path):
    pm = make_plugin_manager()
    assert pm.get_plugin("toy") is not None
    model_dir = tmp_path / "toy_model"
    model_dir.mkdir()
    (model_dir / "toy.json").write_text(json.dumps({"scale": 3}))

    reg = registry.Registry(plugin_manager=pm)
    assert "toy_scale" in reg.adapters and "toy_scale" in reg.matrix.formats
    record = reg.publish(model_dir, name="toys/tripler")
    assert record.format == "toy_scale" and record.handle == "toys/tripler/1"
    model = reg.load("toys/tripler/1", mode="tf2")
    assert model([1.0, 2.0]) == [3.0, 6.0]
    # the toy's own matrix row gates it like any built-in
    import tensorflow as tf
    with tf.Graph().as_default():
        with pytest.raises(registry.UnsupportedOperation, match="load in mode tf2"):
            reg.load("toys/tripler/1", mode="tf1")


def test_built_ins_are_registered_like_any_plugin():
    pm = make_plugin_manager(load_entry_points=False)
    assert [name for name, _ in pm.list_name_plugin() if name in DEFAULT_PLUGINS] == list(DEFAULT_PLUGINS)
    adapters = AdapterSet(pm)
    for fmt in ("tf1_hub", "tf2_saved_model"):
        assert adapters.source(fmt) in DEFAULT_PLUGINS


def test_only_named_plugins_load():
    pm = make_plugin_manager(only={"registry.adapters.tf2_saved_model"})
    assert AdapterSet(pm).formats == ["tf2_saved_model"]


def test_two_adapters_for_one_format_are_a_clash():
    class Again:
        @registry.hookimpl
        def register_adapters(self, register):
            from registry.adapters.tf2_saved_model.adapter import TF2SavedModelAdapter
            register(TF2SavedModelAdapter)

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(Again(), name="again")
    with pytest.raises(PluginError, match="registered by both"):
        AdapterSet(pm)


def test_registering_something_that_is_not_an_adapter_fails():
    class Bad:
        @registry.hookimpl
        def register_adapters(self, register):
            register(object)

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(Bad(), name="bad")
    with pytest.raises(PluginError, match="not a FormatAdapter"):
        AdapterSet(pm)


def test_an_unclaimed_directory_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match="not a model directory"):
        AdapterSet(make_plugin_manager(load_entry_points=False)).detect(tmp_path)


def test_every_hook_has_a_docstring_and_keyword_arguments_only():
    specs = [getattr(hookspecs, n) for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "model_registry_spec")]
    assert specs, "no hookspecs found"
    for spec in specs:
        assert spec.__doc__, spec.__name__
        params = inspect.signature(spec).parameters.values()
        assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)


def test_every_hook_is_documented_in_the_readme():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name in dir(hookspecs):
        if hasattr(getattr(hookspecs, name), "model_registry_spec"):
            assert f"`{name}" in readme, f"hook {name} is not documented in README.md"


def test_every_hook_is_exercised_by_some_test():
    tests = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    for name in dir(hookspecs):
        if hasattr(getattr(hookspecs, name), "model_registry_spec"):
            assert name in tests, f"no test mentions hook {name}"


def test_inspect_version_records_details_or_refuses_a_publish(registry_env, reference_dir):
    class Auditor:
        seen = []

        @registry.hookimpl
        def inspect_version(self, path, info, adapter, claimed_tasks, plugin_manager):
            self.seen.append((Path(path).name, info.format, adapter.format, list(claimed_tasks)))
            if info.format == "tf1_hub":
                raise registry.CatalogError("this catalog takes no TF1 Hub modules")
            return {"details": {"audited_by": "auditor"}}

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(Auditor(), name="auditor")
    reg = registry.Registry(plugin_manager=pm)

    record = reg.publish(reference_dir / "tf2_text_embedding", name="audit/ok")
    assert record.details["audited_by"] == "auditor"
    assert Auditor.seen[-1][1:] == ("tf2_saved_model", "tf2_saved_model", [])

    with pytest.raises(registry.CatalogError, match="no TF1 Hub"):
        reg.publish(reference_dir / "tf1_text_embedding", name="audit/refused")
    assert [m.model_name for m in reg.list_models()] == ["audit/ok"]
    artifacts = [p for p in registry_env.storage_dir.rglob("*.tar.gz")]
    assert artifacts == [Path(record.artifact_uri)]  # the refused module's bytes were never stored
