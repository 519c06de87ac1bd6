"""``model-registry import``: a TFHUB_CACHE_DIR made by tensorflow_hub itself, and folders of archives, imported.

The cache is written by the unmodified tensorflow_hub 0.16.1 client (its own venv) downloading real small
models from an HTTP server on 127.0.0.1 — one by ``http://tfhub.dev/...``, a name given to 127.0.0.1 only in
the private network and mount namespace the download runs in, one by a 127.0.0.1 URL — plus entries whose
descriptors name tfhub.dev handles (written with ``registry.legacy.tfhub_cache``'s writer, as tensorflow_hub
lays them out), and the faults a real cache
collects: an empty sha1 directory, a download interrupted (its ``.lock`` and ``.tmp`` left), a descriptor
naming another handle, and an entry whose files are no model. Every good entry is imported under its derived
name with its handle recorded, every bad one is reported with its reason, nothing stops the run, and a second
run imports nothing — in local mode and in client mode against a real ``model-registry serve``.
"""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import REFERENCE_DIR
from tests.server_support import cli

HUB_RESOLVE = '''
import sys
import tensorflow_hub as hub
for url in sys.argv[1:]:
    print("RESOLVED", hub.resolve(url))
'''

TFHUB_HANDLE = "https://tfhub.dev/google/nnlm-en-dim128/2"
#: What the hub client downloads under the name tfhub.dev (plain HTTP, as old code wrote it).
TFHUB_DOWNLOADED = "http://tfhub.dev/google/tiny-features/1"
UNVERSIONED = "https://tfhub.dev/google/nnlm-en-dim128"


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


#: Inside a private network and mount namespace: tfhub.dev is 127.0.0.1 there (a bind-mounted hosts file), where a
#: plain HTTP server serves the archives, and the hub client caches what it resolves.
NAMESPACE = r"""
set -euo pipefail
ip link set lo up
mount --bind "$HOSTS_FILE" /etc/hosts
"$SERVER_PYTHON" -m http.server 80 --bind 127.0.0.1 --directory "$ARCHIVES" >"$SERVER_LOG" 2>&1 &
for _ in $(seq 100); do
    "$SERVER_PYTHON" -c "import socket; socket.create_connection(('tfhub.dev', 80), 1)" 2>/dev/null && break
    sleep 0.1
done
"$HUB_PYTHON" -c "$HUB_SCRIPT" "$@"
"""


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory) -> dict:
    """A TFHUB_CACHE_DIR filled by tensorflow_hub 0.16.1, then given a tfhub.dev entry and four bad ones."""
    import os
    import sys

    from registry.legacy import tfhub_cache
    from tests.refstack import ensure_hub_client

    root = tmp_path_factory.mktemp("hub-models")
    # What tfhub.dev answered to ?tf-hub-format=compressed: the archive (http.server ignores the query).
    for path, archive in [("google/tiny-features/1", "tf1_image_feature_vector"),
                          ("text/embed/1", "tf2_text_embedding")]:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REFERENCE_DIR / f"{archive}.tar.gz", root / path)
    namespace = tmp_path_factory.mktemp("namespace")
    (namespace / "hosts").write_text("127.0.0.1 localhost\n127.0.0.1 tfhub.dev\n")
    urls = [TFHUB_DOWNLOADED, "http://127.0.0.1/text/embed/1"]
    cache = tmp_path_factory.mktemp("tfhub-cache")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MODEL_REGISTRY_"))}
    env.update({"HOSTS_FILE": str(namespace / "hosts"), "ARCHIVES": str(root), "SERVER_PYTHON": sys.executable,
                "SERVER_LOG": str(namespace / "http.log"), "HUB_PYTHON": str(ensure_hub_client()),
                "HUB_SCRIPT": HUB_RESOLVE, "TFHUB_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3",
                "CUDA_VISIBLE_DEVICES": ""})
    done = subprocess.run(["unshare", "--net", "--mount", "--", "bash", "-c", NAMESPACE, "namespace", *urls],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.stdout.count("RESOLVED") == 2, done.stdout + done.stderr[-3000:]
    assert sorted(p.name for p in cache.iterdir() if p.is_dir()) == sorted(map(tfhub_cache.entry_name, urls))
    tfhub_cache.write_entry(cache, TFHUB_HANDLE, REFERENCE_DIR / "tf1_text_embedding")
    # The same model cached again under its unversioned handle (code that asked for "the newest").
    tfhub_cache.write_entry(cache, UNVERSIONED, REFERENCE_DIR / "tf1_text_embedding")
    bad = {}
    # An empty sha1 directory (tensorflow_hub would download it again), its descriptor there.
    empty = cache / tfhub_cache.entry_name("http://127.0.0.1:1/empty/1")
    empty.mkdir()
    tfhub_cache.descriptor_path(empty).write_text(tfhub_cache.descriptor_text("http://127.0.0.1:1/empty/1"))
    bad[empty.name] = "empty"
    # A download killed half-way: its lock and its .tmp directory left, no entry.
    locked = tfhub_cache.entry_name("https://tfhub.dev/google/interrupted/1")
    (cache / f"{locked}.lock").write_text("host.123.abc")
    partial = cache / f"{locked}.{uuid.uuid4().hex}.tmp"
    partial.mkdir()
    pb = (REFERENCE_DIR / "tf2_text_embedding" / "saved_model.pb").read_bytes()
    (partial / "saved_model.pb").write_bytes(pb[:100])
    bad[locked] = "interrupted"
    # A descriptor that names another handle than the one the directory is named by.
    garbled = cache / tfhub_cache.entry_name("https://tfhub.dev/google/garbled/1")
    shutil.copytree(REFERENCE_DIR / "tf2_text_embedding", garbled)
    tfhub_cache.descriptor_path(garbled).write_text("Module: https://tfhub.dev/google/other/1\n")
    bad[garbled.name] = "descriptor"
    # A complete-looking entry whose files are no model.
    junk_handle = "https://tfhub.dev/google/not-a-model/1"
    junk = cache / tfhub_cache.entry_name(junk_handle)
    junk.mkdir()
    (junk / "README.txt").write_text("not a model")
    tfhub_cache.descriptor_path(junk).write_text(tfhub_cache.descriptor_text(junk_handle))
    bad[junk.name] = "format"
    return {"dir": cache, "urls": urls, "bad": bad}


def _import(kind: str, *args: str, env: dict) -> tuple[int, dict, str]:
    done = cli("import", kind, *args, "--json", env=env, check=False, timeout=600)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout), done.stderr


def _by_status(report: dict, status: str) -> list[dict]:
    return [o for o in report["outcomes"] if o["status"] == status]


def _local_env(registry_env) -> dict:
    import os

    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _check_first_run(report: dict, cache: dict) -> dict[str, dict]:
    imported = {o["name"]: o for o in _by_status(report, "imported")}
    assert set(imported) == {"google/tiny-features", "text/embed", "google/nnlm-en-dim128"}, report
    # Downloaded by tensorflow_hub from "tfhub.dev": the handle recorded in its canonical form, its number kept.
    features = imported["google/tiny-features"]
    assert (features["version"], features["recorded"], features["reason"]) == (
        "google/tiny-features/1", ["https://tfhub.dev/google/tiny-features/1"], None)
    assert imported["google/nnlm-en-dim128"]["recorded"] == [TFHUB_HANDLE]
    assert "version 1 for the handle's version 2" in imported["google/nnlm-en-dim128"]["reason"]
    embed = imported["text/embed"]  # a 127.0.0.1 URL is no legacy handle: a name from its path, no handle
    assert (embed["version"], embed["recorded"]) == ("text/embed/1", [])
    assert "no legacy handle recorded" in embed["reason"]
    refused = {o["source"]: o["reason"] for o in _by_status(report, "refused")}
    assert set(refused) == set(cache["bad"]), refused
    for source, kind in cache["bad"].items():
        reason = refused[source]
        assert "\n" not in reason
        assert {"empty": "empty", "interrupted": ".lock", "descriptor": "descriptor",
                "format": "format"}[kind].lower() in reason.lower(), (kind, reason)
    # Same content, same version: the unversioned entry is the version just imported, which gains its handle.
    [same] = _by_status(report, "already there")
    assert (same["version"], same["recorded"]) == ("google/nnlm-en-dim128/1", [UNVERSIONED])
    assert report["counts"] == {"imported": 3, "already there": 1, "refused": 4}
    return imported


def test_import_a_tfhub_cache_made_by_tensorflow_hub(hub_cache, registry_env, tmp_path):
    import registry
    from registry.legacy import tfhub_cache

    cache = tmp_path / "cache"
    shutil.copytree(hub_cache["dir"], cache, symlinks=True)
    code, report, stderr = _import("tfhub-cache", str(cache), env=_local_env(registry_env))
    assert code == 1 and "4 of 8 entries were refused" in stderr
    _check_first_run(report, hub_cache)

    reg = registry.Registry()
    found = reg.find_legacy_handle("http://www.tfhub.dev/google/nnlm-en-dim128/2/?tf-hub-format=compressed")
    assert found is not None and found.handle == "google/nnlm-en-dim128/1"
    assert sorted(found.legacy_handles) == [UNVERSIONED, TFHUB_HANDLE]
    assert _tree(reg.resolve_path("google/nnlm-en-dim128/1")) == _tree(REFERENCE_DIR / "tf1_text_embedding")
    for url, name in zip(hub_cache["urls"], ["google/tiny-features", "text/embed"], strict=True):
        entry = cache / tfhub_cache.entry_name(url)
        assert _tree(reg.resolve_path(f"{name}/1")) == _tree(entry)

    code, again, _ = _import("tfhub-cache", str(cache), env=_local_env(registry_env))
    assert again["counts"] == {"imported": 0, "already there": 4, "refused": 4}, again
    assert [v.version for v in reg.list_versions("google/tiny-features")] == [1]


def test_import_progress_and_summary_table(hub_cache, registry_env, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(hub_cache["dir"], cache, symlinks=True)
    done = cli("import", "tfhub-cache", str(cache), env=_local_env(registry_env), check=False, timeout=600)
    assert done.returncode == 1
    assert done.stderr.startswith("Names: catalog name = <publisher>/<model>")
    assert "[1/8] " in done.stderr and "[8/8] " in done.stderr
    header, rule, *rows = done.stdout.splitlines()
    assert header.split() == ["STATUS", "SOURCE", "HANDLE", "VERSION", "NOTE"] and set(rule) <= {"-", " "}
    assert rows[-1] == "3 imported, 1 already there, 4 refused"
    assert any(r.startswith("imported") and TFHUB_HANDLE in r and "google/nnlm-en-dim128/1" in r for r in rows)


def test_import_a_tfhub_cache_in_client_mode(hub_cache, registry_server, tmp_path):
    import os

    cache = tmp_path / "cache"
    shutil.copytree(hub_cache["dir"], cache, symlinks=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_REGISTRY_")}
    env.update({"MODEL_REGISTRY_URL": registry_server.url, "MODEL_REGISTRY_TOKEN": registry_server.admin_token,
                "MODEL_REGISTRY_CACHE_DIR": str(tmp_path / "client-cache"), "TF_CPP_MIN_LOG_LEVEL": "3"})
    code, report, _ = _import("tfhub-cache", str(cache), env=env)
    assert code == 1
    _check_first_run(report, hub_cache)
    assert '"POST /api/v1/models/google/nnlm-en-dim128/versions' in registry_server.log()
    status, body = registry_server.json("GET", "/api/v1/models/google/nnlm-en-dim128/versions/1")
    assert status == 200 and sorted(body["legacy_handles"]) == [UNVERSIONED, TFHUB_HANDLE], body
    code, again, _ = _import("tfhub-cache", str(cache), env=env)
    assert again["counts"] == {"imported": 0, "already there": 4, "refused": 4}, again


def test_import_archives_with_a_map(registry_env, tmp_path):
    import registry

    folder = tmp_path / "kept"
    folder.mkdir()
    shutil.copy(REFERENCE_DIR / "tf1_image_feature_vector.tar.gz", folder / "fv.tar.gz")
    shutil.copytree(REFERENCE_DIR / "tf2_text_embedding", folder / "embed-dir")
    (folder / "empty").mkdir()
    table = tmp_path / "map.csv"
    table.write_text("path,handle\n"
                     "# the team's tfhub.dev -> Kaggle table\n"
                     "fv.tar.gz,https://storage.googleapis.com/tfhub-modules/google/tiny/feature_vector/1.tar.gz\n"
                     "embed-dir,https://www.kaggle.com/models/google/tiny-embed/tensorFlow2/en/3\n"
                     "missing.tar.gz,https://tfhub.dev/google/missing/1\n"
                     "empty,https://tfhub.dev/google/empty/1\n")
    code, report, _ = _import("archives", str(folder), "--map", str(table), env=_local_env(registry_env))
    assert code == 1
    imported = {o["name"]: o for o in _by_status(report, "imported")}
    assert set(imported) == {"google/tiny.feature_vector", "google/tiny-embed.tensorflow2.en"}, report
    assert imported["google/tiny.feature_vector"]["recorded"] == ["https://tfhub.dev/google/tiny/feature_vector/1"]
    assert imported["google/tiny-embed.tensorflow2.en"]["recorded"] == [
        "https://www.kaggle.com/models/google/tiny-embed/tensorflow2/en/3"]
    refused = {o["source"]: o["reason"] for o in _by_status(report, "refused")}
    assert set(refused) == {"missing.tar.gz", "empty"}
    reg = registry.Registry()
    version = reg.get_version("google/tiny.feature_vector/1")
    assert version.sha256 == __import__("hashlib").sha256((folder / "fv.tar.gz").read_bytes()).hexdigest()
    assert filecmp.cmp(REFERENCE_DIR / "tf2_text_embedding" / "saved_model.pb",
                       reg.resolve_path("google/tiny-embed.tensorflow2.en/1") / "saved_model.pb", shallow=False)
    _, again, _ = _import("archives", str(folder), "--map", str(table), env=_local_env(registry_env))
    assert again["counts"] == {"imported": 0, "already there": 2, "refused": 2}


@pytest.mark.parametrize("handle, name, version", [
    ("https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5",
     "google/imagenet.mobilenet_v2_100_224.feature_vector", 5),
    ("http://tfhub.dev/tensorflow/bert_en_uncased_L-12_H-768_A-12/3/", "tensorflow/bert_en_uncased_l-12_h-768_a-12", 3),
    ("https://storage.googleapis.com/tfhub-modules/google/nnlm-en-dim128/2.tar.gz", "google/nnlm-en-dim128", 2),
    ("google/mobilenet-v2/tensorFlow2/100-224-feature-vector/4",
     "google/mobilenet-v2.tensorflow2.100-224-feature-vector", 4),
    ("https://www.kaggle.com/models/google/mobilenet-v2/frameworks/tensorFlow2/variations/100-224/versions/2",
     "google/mobilenet-v2.tensorflow2.100-224", 2),
    ("http://127.0.0.1:8123/vision/features/1", "vision/features", 1),
    ("http://models.internal/embed/7", "models.internal/embed", 7),
])
def test_the_name_rule(handle, name, version):
    from registry.legacy.importing import derive_name

    assert derive_name(handle) == (name, version)
