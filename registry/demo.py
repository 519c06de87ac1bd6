"""The README's main job: publish the bundled example models, load them back by handle, check their outputs.

The examples are the reference artifacts in ``registry/demo_models/`` (package data), made by
TensorFlow 2.15 with tensorflow_hub 0.15 (the last stack that could write the
TF1 Hub format), each with the inputs and outputs that stack computed. Every
model is published once, from its directory (the ``.tar.gz`` beside it holds the
same files, for tools that want an archive), unless the model already has a live
version with the same content (the sha256 of the archive publishing would make):
a second run reuses that version, so running the demo twice leaves the catalog as
one run did. Each version is loaded by catalog handle in every mode in which its
format's adapter declares that ``load`` returns TensorFlow's restored object
(``FormatAdapter.restored_object_modes``; mode tf1 inside a ``tf.Graph``), then
compared output by output. Nothing here knows a format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from registry.errors import RegistryError

if TYPE_CHECKING:
    import numpy as np

    from registry.api import Registry

#: The reference models, shipped in the package (clone, editable install and wheel alike).
REFERENCE_DIR = Path(__file__).resolve().parent / "demo_models"
#: Largest absolute difference from the reference outputs that counts as reproducing them.
ATOL = 1e-5
DEFAULT_PUBLISHER = "examples"


@dataclass(frozen=True)
class Comparison:
    """One output of one signature of one loaded version, against the reference."""

    handle: str
    mode: str
    signature: str
    output: str
    max_abs_diff: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= ATOL


@dataclass
class DemoReport:
    #: Every version the demo checked: published now, or found already published with the same content.
    published: list[str] = field(default_factory=list)
    #: Those of ``published`` that were already in the catalog (a second run), not published again.
    reused: list[str] = field(default_factory=list)
    #: The format of each published handle, as recorded.
    formats: dict[str, str] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    #: (example name, error message) for each example that could not be published or loaded.
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and bool(self.comparisons) and all(c.ok for c in self.comparisons)


def reference_manifest(reference_dir: Path = REFERENCE_DIR) -> dict:
    path = Path(reference_dir) / "MANIFEST.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        from registry.errors import ArtifactNotFound

        raise ArtifactNotFound(f"no example models at {reference_dir} (MANIFEST.json is missing); the package ships "
                               f"them in registry/demo_models: reinstall it, or pass --reference-dir") from None


def expected_values(reference_dir: Path, name: str) -> tuple[dict, dict]:
    """``NAME.expected.npz`` as ``({signature: {input: array}}, {signature: {output: array}})``."""
    import numpy as np

    inputs: dict[str, dict] = {}
    outputs: dict[str, dict] = {}
    with np.load(Path(reference_dir) / f"{name}.expected.npz") as data:
        for key in data.files:
            kind, signature, tensor = key.split(":", 2)
            (inputs if kind == "in" else outputs).setdefault(signature, {})[tensor] = data[key]
    return inputs, outputs


def run_demo(registry: "Registry", reference_dir: Path = REFERENCE_DIR, *, publisher: str = DEFAULT_PUBLISHER,
             echo: Callable[[str], None] = print) -> DemoReport:
    """Publish, load and check every example model; ``echo`` receives one line per step."""
    reference_dir = Path(reference_dir)
    report = DemoReport()
    for name, entry in sorted(reference_manifest(reference_dir).items()):
        model_name = f"{publisher}/{name.replace('_', '-')}"
        inputs, outputs = expected_values(reference_dir, name)
        source = reference_dir / name
        try:
            record = already_published(registry, model_name, source)
            if record is not None:
                report.reused.append(record.handle)
                echo(f"already published {record.handle} ({record.format}, sha256 {record.sha256[:12]}): "
                     f"same content as {source.name}, not published again")
            else:
                record = registry.publish(source, name=model_name, description=entry.get("doc", ""))
                echo(f"published {record.handle} from {source.name} ({record.format}, sha256 {record.sha256[:12]})")
            report.published.append(record.handle)
            report.formats[record.handle] = record.format
            for mode in demo_modes(registry, record.format):
                for comparison in compare_outputs(registry, record.handle, mode, inputs, outputs):
                    report.comparisons.append(comparison)
                    echo(f"  load {comparison.handle} mode {mode}: {comparison.signature} -> {comparison.output}"
                         f"  max abs diff {comparison.max_abs_diff:.1e}  {'ok' if comparison.ok else 'MISMATCH'}")
        except RegistryError as error:
            report.failures.append((f"{name} from {source.name}", str(error)))
            echo(f"FAILED {name} from {source.name}: {error}")
    return report


class _Discard:
    """A sink that keeps nothing: packing into it gives an archive's sha256 without writing the archive."""

    def write(self, data: bytes) -> int:
        return len(data)


def already_published(registry: "Registry", model_name: str, source: Path):
    """The newest live version of ``model_name`` whose artifact has ``source``'s content, or None.

    Publishing packs a directory deterministically (``pack_directory``), so the sha256 of that
    archive is the content's identity, whatever catalog or storage holds it.
    """
    from registry.errors import ModelNotFound
    from registry.storage.archive import pack_directory

    try:
        versions = registry.list_versions(model_name)
    except ModelNotFound:
        return None
    sha256, _ = pack_directory(source, _Discard())  # type: ignore[arg-type]  # write() is all it needs
    same = [v for v in versions if v.sha256 == sha256]  # live versions only, oldest first
    return same[-1] if same else None


def demo_modes(registry: "Registry", format: str) -> list[str]:
    """The modes the demo loads a version of ``format`` in: where its adapter returns the restored object, tf2 first."""
    declared = registry.adapters.get(format).restored_object_modes
    return sorted(declared, key=lambda mode: mode != "tf2")


def compare_outputs(registry: "Registry", handle: str, mode: str, inputs: dict, outputs: dict) -> list[Comparison]:
    """Load ``handle`` in ``mode``, run every signature the reference has outputs for, and compare."""
    import numpy as np

    if mode == "tf1":
        actual = _run_in_graph(registry, handle, inputs, outputs)
    else:
        model = registry.load(handle, mode="tf2")
        actual = {sig: {k: v.numpy() for k, v in _call(model, sig, inputs[sig]).items()} for sig in outputs}
    comparisons = []
    for signature, expected in outputs.items():
        for output, want in expected.items():
            got = actual[signature].get(output)
            if got is None:
                from registry.errors import SignatureError

                raise SignatureError(f"{handle} signature {signature!r} returned no output {output!r} "
                                     f"(it returned {sorted(actual[signature])})")
            diff = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - want))) if want.size else 0.0
            comparisons.append(Comparison(handle, mode, signature, output, diff))
    return comparisons


def _run_in_graph(registry: "Registry", handle: str, inputs: dict, outputs: dict) -> dict:
    """Mode tf1: build the model into a fresh ``tf.Graph`` and run it in a session."""
    import tensorflow as tf

    with tf.Graph().as_default() as graph:
        model = registry.load(handle, mode="tf1")
        fetches = {sig: _call(model, sig, inputs[sig]) for sig in outputs}
        with tf.compat.v1.Session(graph=graph) as session:
            session.run([tf.compat.v1.global_variables_initializer(), tf.compat.v1.tables_initializer()])
            return session.run(fetches)


def _call(model, signature: str, feeds: dict[str, "np.ndarray"]) -> dict:
    """Outputs of ``signature`` (``__call__``: the object's call, its output named ``default``) as a dict."""
    import tensorflow as tf

    tensors = {key: tf.constant(value) for key, value in feeds.items()}
    if signature == "__call__":
        result = model(*tensors.values()) if len(tensors) == 1 else model(**tensors)
    else:
        result = model.signatures[signature](**tensors)
    return result if isinstance(result, dict) else {"default": result}
