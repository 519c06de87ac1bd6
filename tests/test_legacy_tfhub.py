"""Unmodified TF Hub code, by its tfhub.dev URLs, against this registry: online through the server, offline
from an exported cache, and caches shared both ways.

(a) The server over HTTPS on 127.0.0.1:443 with ``tfhub.dev``, ``storage.googleapis.com`` and
``api.kaggle.com`` pointing at it only inside the test's private network and mount namespace, a test CA in
``SSL_CERT_FILE`` (``tests/legacy_hosts.py``): the unmodified tensorflow_hub 0.16.1 client (its own venv:
TF 2.21, tf_keras) runs ``hub.load`` and ``hub.KerasLayer`` of ``https://tfhub.dev/<path>/<version>`` (and
the bucket's ``.tar.gz``), and the reference stack (TF 2.15 + tensorflow_hub 0.15) applies a TF1 module by
its tfhub.dev URL with ``hub.Module`` in a graph; outputs equal the reference outputs.

(b) Offline (``unshare -n``: no network at all) from a directory ``model-registry export tfhub-cache`` wrote:
the same clients, by several spellings of the URLs, with ``TFHUB_CACHE_DIR`` set to it.

And the cache tensorflow_hub itself filled in (a) serves ``registry.load`` of the same URL in place, offline,
with a catalog that knows nothing of it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from registry.legacy import tfhub_cache
from tests.conftest import REFERENCE_DIR
from tests.legacy_hosts import run_behind_legacy_hosts, run_offline
from tests.refstack import _quiet_env, ensure_hub_client, ensure_refstack
from tests.server_support import cli, server_environ

pytestmark = [pytest.mark.refstack, pytest.mark.slow]

TEXT = "https://tfhub.dev/google/nnlm-en-dim50/2"  # three names: the catalog's /{publisher}/{model}/{version} route
FEATURES = "https://tfhub.dev/google/imagenet/tiny/feature_vector/1"  # deeper: the legacy router's own

HUB_016_SCRIPT = '''
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

ref, text_urls, features_url = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
def expected(name):
    data = np.load(f"{ref}/{name}.expected.npz")
    return {k: data[k] for k in data.files}

result = {"hub": hub.__version__, "tf": tf.__version__}
e = expected("tf2_text_embedding")
sentences = tf.constant(e["in:__call__:sentences"])
for url in text_urls:
    result["load " + url] = bool(np.allclose(hub.load(url)(sentences).numpy(), e["out:__call__:default"], atol=1e-5))
keras_model = tf_keras.Sequential([hub.KerasLayer(text_urls[0], input_shape=[], dtype=tf.string)])
result["keras_layer"] = bool(np.allclose(keras_model.predict(sentences, verbose=0), e["out:__call__:default"],
                                         atol=1e-5))
e = expected("tf1_image_feature_vector")
module = hub.load(features_url)
out = module.signatures["image_feature_vector"](images=tf.constant(e["in:image_feature_vector:images"]))
result["tf1_signature"] = bool(np.allclose(out["default"].numpy(), e["out:image_feature_vector:default"], atol=1e-5))
print("RESULT " + json.dumps(result))
'''

HUB_015_SCRIPT = '''
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_hub as hub

ref, url = sys.argv[1], sys.argv[2]
data = np.load(f"{ref}/tf1_image_feature_vector.expected.npz")
with tf.Graph().as_default():
    module = hub.Module(url)
    images = tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3])
    features = module(images, signature="image_feature_vector")
    with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        got = session.run(features, {images: data["in:image_feature_vector:images"]})
print("RESULT " + json.dumps({"hub": hub.__version__,
                              "module": bool(np.allclose(got, data["out:image_feature_vector:default"], atol=1e-5))}))
'''


def _result(done) -> dict:
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-2000:] + done.stderr[-4000:] + getattr(done, "server_log", "")[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> dict:
    """A catalog (SQLite, local storage) whose two versions carry tfhub.dev handles, published with the CLI."""
    root = tmp_path_factory.mktemp("legacy-catalog")
    env = server_environ(database_url=f"sqlite:///{root / 'catalog.db'}", storage_url=str(root / "artifacts"),
                         cache_dir=root / "server-cache")
    cli("db", "upgrade", env=env)
    cli("publish", str(REFERENCE_DIR / "tf2_text_embedding.tar.gz"), "--name", "text/embed", "--legacy-handle",
        TEXT, env=env)
    cli("publish", str(REFERENCE_DIR / "tf1_image_feature_vector.tar.gz"), "--name", "vision/features",
        "--legacy-handle", "http://www.tfhub.dev/google/imagenet/tiny/feature_vector/1/", env=env)
    return env


def _client_env(**extra: str) -> dict:
    return {**_quiet_env(), **extra}


def test_unmodified_hub_clients_load_tfhub_urls_from_the_server_over_tls(catalog, tmp_path):
    hub_cache = tmp_path / "hub-cache-016"
    urls = [TEXT, "https://storage.googleapis.com/tfhub-modules/google/nnlm-en-dim50/2.tar.gz"]
    done = run_behind_legacy_hosts(
        [str(ensure_hub_client()), "-c", HUB_016_SCRIPT, str(REFERENCE_DIR), json.dumps(urls), FEATURES],
        server_env=catalog, root=tmp_path / "ns-016", client_env=_client_env(TFHUB_CACHE_DIR=str(hub_cache)))
    result = _result(done)
    assert (result["hub"], result["tf"]) == ("0.16.1", "2.21.0")
    assert result == {**result, "load " + urls[0]: True, "load " + urls[1]: True, "keras_layer": True,
                      "tf1_signature": True}
    assert '"GET /google/nnlm-en-dim50/2?tf-hub-format=compressed HTTP/1.1" 200' in done.server_log
    assert '"GET /google/imagenet/tiny/feature_vector/1?tf-hub-format=compressed HTTP/1.1" 200' in done.server_log
    assert '"GET /tfhub-modules/google/nnlm-en-dim50/2.tar.gz?tf-hub-format=compressed HTTP/1.1" 200' in \
        done.server_log
    # What the hub client wrote is tensorflow_hub's layout, as registry.legacy.tfhub_cache reads it.
    entries = list(tfhub_cache.entries(hub_cache))
    assert sorted(entry.handle for entry in entries) == sorted([*urls, FEATURES])

    # That cache, used in place by the registry: offline, with a catalog that knows none of these handles.
    env = {**catalog, "TFHUB_CACHE_DIR": str(hub_cache), "MODEL_REGISTRY_OFFLINE": "1",
           "MODEL_REGISTRY_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
           "MODEL_REGISTRY_CACHE_DIR": str(tmp_path / "registry-cache")}
    script = ("import json, sys, numpy as np, tensorflow as tf, registry; "
              "e = np.load(sys.argv[1] + '/tf2_text_embedding.expected.npz'); "
              f"print('RESULT', json.dumps({{'path': registry.resolve({TEXT!r}), 'same': bool(np.allclose("
              f"registry.load({TEXT!r})(tf.constant(e['in:__call__:sentences'])).numpy(), "
              f"e['out:__call__:default'], atol=1e-5))}}))")
    used = _result(run_offline([sys.executable, "-c", script, str(REFERENCE_DIR)], env=env))
    assert used == {"path": str(hub_cache / tfhub_cache.entry_name(TEXT)), "same": True}
    assert not (tmp_path / "registry-cache").exists() or not any((tmp_path / "registry-cache").rglob("*.pb"))


def test_the_reference_stack_applies_a_tf1_module_by_its_tfhub_url_over_tls(catalog, tmp_path):
    done = run_behind_legacy_hosts(
        [str(ensure_refstack()), "-c", HUB_015_SCRIPT, str(REFERENCE_DIR), FEATURES], server_env=catalog,
        root=tmp_path / "ns-015", client_env=_client_env(TFHUB_CACHE_DIR=str(tmp_path / "hub-cache-015")))
    assert _result(done) == {"hub": "0.15.0", "module": True}


def test_offline_from_an_exported_cache(catalog, tmp_path):
    exported = tmp_path / "exported"
    done = cli("export", "tfhub-cache", str(exported), "--all", env=catalog)
    assert "entries in" in done.stdout and TEXT in done.stdout
    # Stored once per version: two directories, every other spelling a link to one of them.
    directories = [path for path in exported.iterdir() if path.is_dir() and not path.is_symlink()]
    links = [path for path in exported.iterdir() if path.is_symlink()]
    assert len(directories) == 2 and len(links) >= 14
    assert all(os.readlink(link) in {d.name for d in directories} for link in links)
    assert len(list(exported.glob("*.descriptor.txt"))) == len(directories) + len(links)
    assert not [path for path in exported.iterdir() if path.name.endswith((".lock", ".tmp"))]

    # Copied elsewhere as a folder (relative links), then used with no network at all.
    moved = tmp_path / "elsewhere"
    shutil.copytree(exported, moved, symlinks=True)
    spellings = [TEXT, "http://tfhub.dev/google/nnlm-en-dim50/2/", "https://www.tfhub.dev/google/nnlm-en-dim50/2"]
    done = run_offline([str(ensure_hub_client()), "-c", HUB_016_SCRIPT, str(REFERENCE_DIR), json.dumps(spellings),
                        "http://tfhub.dev/google/imagenet/tiny/feature_vector/1"],
                       env=_client_env(TFHUB_CACHE_DIR=str(moved)))
    result = _result(done)
    assert all(result["load " + url] for url in spellings) and result["keras_layer"] and result["tf1_signature"]
    done = run_offline([str(ensure_refstack()), "-c", HUB_015_SCRIPT, str(REFERENCE_DIR),
                        "https://www.tfhub.dev/google/imagenet/tiny/feature_vector/1/"],
                       env=_client_env(TFHUB_CACHE_DIR=str(moved)))
    assert _result(done) == {"hub": "0.15.0", "module": True}


def test_export_chooses_versions_by_catalog_or_legacy_handle_and_refuses_neither(catalog, tmp_path):
    one = tmp_path / "one"
    done = cli("export", "tfhub-cache", str(one), "https://tfhub.dev/google/nnlm-en-dim50/2/", env=catalog)
    assert TEXT in done.stdout and FEATURES not in done.stdout
    assert (one / tfhub_cache.entry_name(TEXT)).is_dir()
    again = cli("export", "tfhub-cache", str(one), "text/embed/1", env=catalog)  # entries already there are kept
    assert again.returncode == 0 and (one / tfhub_cache.entry_name(TEXT)).is_dir()
    for args, words in ((["export", "tfhub-cache", str(tmp_path / "x")], "--all"),
                        (["export", "tfhub-cache", str(tmp_path / "x"), "https://tfhub.dev/nobody/none/1"],
                         "no live catalog version"),
                        (["export", "tfhub-cache", str(tmp_path / "x"), "--all", "text/embed/1"], "not both")):
        failed = cli(*args, env=catalog, check=False)
        assert failed.returncode != 0 and words in failed.stderr + failed.stdout and "Traceback" not in failed.stderr


def test_serve_refuses_tls_half_given_or_a_key_of_another_certificate(catalog, tmp_path):
    from tests.legacy_hosts import CertificateAuthority

    ca = CertificateAuthority.create(tmp_path / "a")
    other = CertificateAuthority.create(tmp_path / "b")
    for extra, words in ((["--ssl-certfile", str(ca.cert_file)], "both"),
                         (["--ssl-certfile", str(ca.cert_file), "--ssl-keyfile", str(other.key_file)],
                          "cannot serve HTTPS")):
        failed = cli("serve", "--port", "0", *extra, env=catalog, check=False, timeout=60)
        assert failed.returncode != 0 and words in failed.stderr and "Traceback" not in failed.stderr


def test_exported_files_are_the_published_bytes(catalog, tmp_path):
    exported = tmp_path / "bytes"
    cli("export", "tfhub-cache", str(exported), "text/embed/1", env=catalog)
    entry = exported / tfhub_cache.entry_name(TEXT)
    for path in (REFERENCE_DIR / "tf2_text_embedding").rglob("*"):
        if path.is_file():
            relative = path.relative_to(REFERENCE_DIR / "tf2_text_embedding")
            assert (entry / relative).read_bytes() == path.read_bytes(), relative
