"""Code that names models by their tfhub.dev or Kaggle URL loads the catalog's version, with no network.

``registry.load``, ``resolve``, ``KerasLayer``, ``Module`` and ``load_module_spec`` given a legacy handle in
any spelling resolve it through the catalog first; the processes run in a network namespace with no network
at all (``unshare -n``), offline, with only a local SQLite catalog: a call to tfhub.dev could not even start.
A legacy handle the catalog does not know keeps the URL behaviour (offline: an ``OfflineError`` naming the
import command).

And ``TFHUB_CACHE_DIR``, honoured as tensorflow_hub 0.15 does (``tests/test_legacy_tfhub.py`` has the unmodified
hub clients reading and writing the same caches): tensorflow_hub 0.15's ``e2e_test.test_http_locations``
rewritten against this registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

import registry
from registry.api import Registry, reset_default_registry
from registry.errors import LegacyHandleError, OfflineError, VersionNotFound
from tests.conftest import REFERENCE_DIR
from tests.legacy_hosts import run_offline

REPO_ROOT = REFERENCE_DIR.parents[1]
HUB = "https://tfhub.dev/google/nnlm-en-dim50/2"
TF1_HUB = "https://tfhub.dev/google/tf1-embed/1"

OFFLINE_SCRIPT = '''
import json, sys
import numpy as np
import tensorflow as tf
import registry
from registry.errors import OfflineError
from tests.tf1_support import initialize

ref = sys.argv[1]
e = np.load(f"{ref}/tf2_text_embedding.expected.npz")
sentences = tf.constant(e["in:__call__:sentences"])
result = {}
for url in ["https://tfhub.dev/google/nnlm-en-dim50/2", "http://www.tfhub.dev/google/nnlm-en-dim50/2/",
            "https://storage.googleapis.com/tfhub-modules/google/nnlm-en-dim50/2.tar.gz",
            "https://hub.tensorflow.google.cn/google/nnlm-en-dim50/2?tf-hub-format=compressed",
            "tfhub.dev/google/nnlm-en-dim50", "google/nnlm/tensorflow2/en-dim50/2"]:
    model = registry.load(url)
    result[url] = bool(np.allclose(model(sentences).numpy(), e["out:__call__:default"], atol=1e-5))
layer = registry.KerasLayer("http://tfhub.dev/google/nnlm-en-dim50/2")
result["keras_layer"] = bool(np.allclose(np.asarray(layer(sentences)), e["out:__call__:default"], atol=1e-5))
result["resolve"] = registry.resolve("https://tfhub.dev/google/nnlm-en-dim50/2/")

t = np.load(f"{ref}/tf1_text_embedding.expected.npz")
spec = registry.load_module_spec("https://www.tfhub.dev/google/tf1-embed/1")
result["spec"] = sorted(spec.get_signature_names())
with tf.Graph().as_default():
    module = registry.Module("https://tfhub.dev/google/tf1-embed/1")
    out = module(tf.constant(t["in:default:default"]))
    with tf.compat.v1.Session() as session:
        initialize(session)
        result["module"] = bool(np.allclose(session.run(out), t["out:default:default"], atol=1e-5))
try:
    registry.load("https://tfhub.dev/google/not-catalogued/1")
except OfflineError as error:
    result["uncatalogued"] = str(error)
print("RESULT " + json.dumps(result))
'''


def _result(done) -> dict:
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_catalogued_legacy_handles_load_offline_with_no_network_at_all(registry_env):
    local = Registry()
    published = local.publish(REFERENCE_DIR / "tf2_text_embedding", name="google/nnlm-en-dim50",
                              legacy_handles=[HUB, "google/nnlm/tensorflow2/en-dim50/2"])
    local.publish(REFERENCE_DIR / "tf1_text_embedding", name="google/tf1-embed", legacy_handles=[TF1_HUB])
    env = {**os.environ, "MODEL_REGISTRY_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TFHUB_CACHE_DIR", None)
    result = _result(run_offline([sys.executable, "-c", OFFLINE_SCRIPT, str(REFERENCE_DIR)], env=env))
    assert {url: ok for url, ok in result.items() if url.startswith(("http", "tfhub", "google"))} == {
        "https://tfhub.dev/google/nnlm-en-dim50/2": True, "http://www.tfhub.dev/google/nnlm-en-dim50/2/": True,
        "https://storage.googleapis.com/tfhub-modules/google/nnlm-en-dim50/2.tar.gz": True,
        "https://hub.tensorflow.google.cn/google/nnlm-en-dim50/2?tf-hub-format=compressed": True,
        "tfhub.dev/google/nnlm-en-dim50": True, "google/nnlm/tensorflow2/en-dim50/2": True}
    assert result["keras_layer"] and result["module"] and result["spec"] == ["default"]
    assert result["resolve"] == local.resolve(published.handle)
    assert "model-registry import tfhub-cache" in result["uncatalogued"]
    assert "https://tfhub.dev/google/not-catalogued/1" in result["uncatalogued"]


def test_a_legacy_handle_naming_a_deleted_version_or_a_kaggle_page_is_refused_in_words(registry_env):
    local = Registry()
    version = local.publish(REFERENCE_DIR / "tf2_text_embedding", name="google/nnlm-en-dim50", legacy_handles=[HUB])
    local.delete_version(version.handle)
    with pytest.raises(VersionNotFound, match="was deleted"):
        local.resolve(HUB)
    with pytest.raises(VersionNotFound, match="import kagglehub-cache"):
        local.resolve("https://www.kaggle.com/models/google/x/tensorflow2/y/1")
    with pytest.raises(LegacyHandleError):
        local.resolve("https://tfhub.dev/google")


def test_tensorflow_hub_015_e2e_http_locations_with_tfhub_cache_dir(http_server, registry_env, tmp_path,
                                                                   monkeypatch):
    """tensorflow_hub 0.15's e2e_test.test_http_locations: a module at an HTTP URL applied in a graph, then
    again with TFHUB_CACHE_DIR a file:// URL, which then holds exactly the entry and its descriptor."""
    url = http_server.add_file("test_module.tgz", REFERENCE_DIR / "tf1_text_embedding.tar.gz")
    inputs = np.load(REFERENCE_DIR / "tf1_text_embedding.expected.npz")

    def apply() -> np.ndarray:
        reset_default_registry()
        with tf.Graph().as_default():
            module = registry.Module(url)
            out = module(tf.constant(inputs["in:default:default"]))
            with tf.compat.v1.train.MonitoredSession() as session:
                return session.run(out)

    np.testing.assert_allclose(apply(), inputs["out:default:default"], atol=1e-5)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    monkeypatch.setenv("TFHUB_CACHE_DIR", f"file://{cache_dir}")
    np.testing.assert_allclose(apply(), inputs["out:default:default"], atol=1e-5)
    content = sorted(os.listdir(cache_dir))
    assert len(content) == 2 and content[1].endswith(".descriptor.txt")
    assert content[0] == hashlib.sha1(url.encode()).hexdigest()
    assert sorted(os.listdir(cache_dir / content[0])) == ["assets", "saved_model.pb", "tfhub_module.pb", "variables"]
    assert (cache_dir / content[1]).read_text().startswith(f"Module: {url}\n")

    # The entry is used in place from now on: the server is not asked again, even for a load in TF2.
    asked = len(http_server.requests)
    np.testing.assert_allclose(apply(), inputs["out:default:default"], atol=1e-5)
    assert registry.resolve(url) == str(cache_dir / content[0])
    assert len(http_server.requests) == asked
    monkeypatch.setenv("MODEL_REGISTRY_OFFLINE", "1")
    reset_default_registry()
    assert registry.resolve(url) == str(cache_dir / content[0])
    with pytest.raises(OfflineError, match="not in TFHUB_CACHE_DIR"):
        registry.resolve(http_server.url("other.tgz"))
