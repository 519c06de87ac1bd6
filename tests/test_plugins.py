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


# --- precedence: one rule for directories, files and objects -----------------------------------------

def _adapter(format_name: str, precedence: int, *, claims_dirs: str | None = None, claims_suffix: str | None = None,
             accepts_type: type | None = None):
    """A minimal adapter class claiming directories holding ``claims_dirs``, files ending in ``claims_suffix``
    and objects of ``accepts_type``."""
    from registry.adapter import ArtifactInfo, FormatAdapter

    class Claimer(FormatAdapter):
        format = format_name
        description = f"claims for {format_name}"

        @classmethod
        def detect(cls, path):
            return claims_dirs is not None and (Path(path) / claims_dirs).is_file()

        @classmethod
        def detect_file(cls, path):
            return claims_suffix is not None and Path(path).name.endswith(claims_suffix)

        def inspect(self, path):
            return ArtifactInfo(format=self.format)

        def load(self, path, *, mode, **options):
            return Path(path)

        def accepts(self, obj):
            return accepts_type is not None and isinstance(obj, accepts_type)

    Claimer.precedence = precedence
    Claimer.__name__ = f"Claimer_{format_name}"
    return Claimer


def _set_of(*adapter_classes, builtins: bool = True) -> AdapterSet:
    pm = make_plugin_manager(load_entry_points=False) if builtins else make_plugin_manager(
        load_defaults=False, load_entry_points=False)
    for i, cls in enumerate(adapter_classes):
        class Plugin:
            @registry.hookimpl
            def register_adapters(self, register, _cls=cls):
                register(_cls)

        pm.register(Plugin(), name=f"plugin-{i}")
    return AdapterSet(pm)


class Thing:
    pass


@pytest.mark.parametrize("order", [1, -1], ids=["registered-first", "registered-last"])
def test_the_higher_precedence_wins_a_directory_over_a_builtin_whatever_the_registration_order(order, reference_dir):
    model_dir = reference_dir / "tf2_text_embedding"
    specific = _adapter("zz_specific", 10, claims_dirs="saved_model.pb")
    same_rank = _adapter("zz_same_rank", 0, claims_dirs="saved_model.pb")
    adapters = _set_of(*[specific, same_rank][::order])
    assert adapters.detect(model_dir).format == "zz_specific"
    # Without it, the tie at precedence 0 goes to the format name that sorts first: the built-in.
    assert _set_of(same_rank).detect(model_dir).format == "tf2_saved_model"
    assert [a.format for a in adapters.ranked][:1] == ["zz_specific"]


@pytest.mark.parametrize("order", [1, -1], ids=["registered-first", "registered-last"])
def test_the_same_rule_settles_files_and_objects(order, tmp_path):
    low, high = _adapter("a_low", 0, claims_suffix=".thing", accepts_type=Thing), \
        _adapter("b_high", 3, claims_suffix=".thing", accepts_type=Thing)
    adapters = _set_of(*[low, high][::order], builtins=False)
    file = tmp_path / "model.thing"
    file.write_text("x")
    assert adapters.claim_file(file).format == "b_high"
    assert adapters.detect(file).format == "b_high"
    assert adapters.for_object(Thing()).format == "b_high"
    tie = _set_of(*[low, _adapter("b_tie", 0, claims_suffix=".thing", accepts_type=Thing)][::order], builtins=False)
    assert tie.claim_file(file).format == tie.for_object(Thing()).format == "a_low"


def test_unclaimed_files_and_objects_are_typed_errors_naming_what_adapters_declare(tmp_path):
    adapters = AdapterSet(make_plugin_manager(load_entry_points=False))
    file = tmp_path / "weights.bin"
    file.write_bytes(b"\0")
    assert adapters.claim_file(file) is None
    with pytest.raises(FormatError, match="no registered adapter claims") as caught:
        adapters.detect(file)
    for adapter in adapters:
        assert adapter.expects in str(caught.value)
    with pytest.raises(FormatError, match="no registered adapter can save an object of type Thing") as caught:
        adapters.for_object(Thing())
    for adapter in adapters:
        assert adapter.creates_from in str(caught.value)


def test_an_older_plugins_claim_directory_hook_counts_as_its_adapters_claim(tmp_path):
    hooked = _adapter("zz_hooked", 1)  # its detect claims nothing: only the hook does

    class OldPlugin:
        @registry.hookimpl
        def register_adapters(self, register):
            register(hooked)

        @registry.hookimpl
        def claim_directory(self, path):
            return hooked.format if (Path(path) / "old.marker").exists() else None

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(OldPlugin(), name="old")
    (tmp_path / "old.marker").write_text("")
    (tmp_path / "saved_model.pb").write_bytes(b"")  # a TF2 SavedModel by its marker too: precedence decides
    assert AdapterSet(pm).detect(tmp_path).format == "zz_hooked"

    class Liar:
        @registry.hookimpl
        def claim_directory(self, path):
            return "no_such_format"

    pm.register(Liar(), name="liar")
    with pytest.raises(PluginError, match="no_such_format"):
        AdapterSet(pm).detect(tmp_path)


def test_a_single_file_claimed_by_an_adapter_is_published_and_loaded_without_unpacking(toy_distribution,
                                                                                       registry_env, tmp_path):
    """The toy claims ``*.toy`` files: publish lays one out as a directory, a path handle loads the file itself."""
    from registry.adapter import FormatAdapter

    import toy_registry_plugin

    class ToyFileAdapter(toy_registry_plugin.ToyAdapter):
        format = "toy_file"
        precedence = 1
        matrix = tuple(type(c)(**{**c.__dict__, "format": "toy_file"}) for c in toy_registry_plugin.ToyAdapter.matrix)

        @classmethod
        def detect(cls, path):
            return any(Path(path).glob("*.toy"))

        @classmethod
        def detect_file(cls, path):
            return Path(path).suffix == ".toy"

        def load(self, path, *, mode, **options):
            path = Path(path)
            file = path if path.is_file() else next(path.glob("*.toy"))
            return toy_registry_plugin.ScaledModel(json.loads(file.read_text())["scale"])

    assert issubclass(ToyFileAdapter, FormatAdapter)
    pm = make_plugin_manager(load_entry_points=False)

    class Plugin:
        @registry.hookimpl
        def register_adapters(self, register):
            register(ToyFileAdapter)

    pm.register(Plugin(), name="toy-file")
    reg = registry.Registry(plugin_manager=pm)
    model_file = tmp_path / "doubler.toy"
    model_file.write_text(json.dumps({"scale": 2}))
    record = reg.publish(model_file, name="toys/doubler")
    assert record.format == "toy_file"
    assert [p.name for p in reg.resolve_path(record.handle).iterdir()] == ["doubler.toy"]
    assert reg.load(record.handle, mode="tf2")([1.0]) == [2.0]
    assert reg.load(str(model_file), mode="tf2")([3.0]) == [6.0]  # a path handle to the file: not an archive
    with pytest.raises(registry.HandleError, match="not a .tar.gz archive"):
        reg.load(str(tmp_path / "other.bin") if (tmp_path / "other.bin").write_text("?") else "", mode="tf2")
