"""Client mode: a program with only MODEL_REGISTRY_URL and a token uses a registry server for everything.

The client runs in its own process whose database URL points at a port nothing
listens on and whose storage URL names a bucket that does not exist: if any
call reached for either instead of the server, it would fail. It publishes (a
directory and an archive), sets an alias, searches by task, loads by alias in
tf2 mode and applies a TF1 module with ``registry.Module`` in a graph, with the
reference stack's outputs; refusals arrive as the same ``registry.errors``
types a local call raises. Then, offline and with the server gone, pinned
handles it fetched still load from its cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REFERENCE_DIR
from tests.server_support import create_token

CLIENT_SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    import tensorflow as tf
    import registry
    from registry.errors import AccessDenied, VersionNotFound, SignatureError

    ref = sys.argv[1]
    result = {}
    def expected(name):
        data = np.load(f"{ref}/{name}.expected.npz")
        return {k: data[k] for k in data.files}

    text = registry.publish(f"{ref}/tf2_text_embedding", name="text/embed", description="sentences",
                            tasks=["text_embedding"])
    vision = registry.publish(f"{ref}/tf1_image_feature_vector.tar.gz", name="vision/features",
                              tasks=["image_feature_vector"])
    result["published"] = [text.handle, vision.handle]
    result["alias"] = registry.set_alias("vision/features", "prod", 1).aliases
    registry.set_alias("text/embed", "prod", 1)
    result["search"] = [v.handle for v in registry.search(task="image_feature_vector")]
    result["text_search"] = {text: [v.handle for v in registry.search(text=text)] for text in TEXTS}
    result["versions"] = [v.handle for v in registry.list_versions("text/embed")]
    result["get_version"] = registry.get_version("text/embed@prod").handle
    result["interchangeable"] = bool(registry.interchangeable("text/embed/1", "text/embed/1"))

    e = expected("tf2_text_embedding")
    model = registry.load("text/embed@prod", mode="tf2")
    out = model(tf.constant(e["in:__call__:sentences"]))
    result["tf2_matches"] = bool(np.allclose(out.numpy(), e["out:__call__:default"], atol=1e-5))
    layer = registry.KerasLayer("text/embed/1")
    result["keras_matches"] = bool(np.allclose(layer(tf.constant(e["in:__call__:sentences"])).numpy(),
                                               e["out:__call__:default"], atol=1e-5))

    e = expected("tf1_image_feature_vector")
    with tf.Graph().as_default():
        module = registry.Module("vision/features@prod")
        images = tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3])
        features = module(images, signature="image_feature_vector")
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            got = session.run(features, {images: e["in:image_feature_vector:images"]})
    result["module_matches"] = bool(np.allclose(got, e["out:image_feature_vector:default"], atol=1e-5))

    for name, call in {"delete": lambda: registry.delete_version("text/embed/1"),
                       "missing": lambda: registry.get_version("text/embed/9"),
                       "bad claim": lambda: registry.publish(f"{ref}/tf2_text_embedding", name="text/bad",
                                                             tasks=["image_feature_vector"])}.items():
        try:
            call()
            result[name] = "no error"
        except Exception as error:
            result[name] = [type(error).__name__, isinstance(error, registry.RegistryError),
                            isinstance(error, PermissionError)]
    registry.remove_alias("text/embed", "prod")
    result["aliases_after"] = registry.get_version("text/embed/1").aliases
    print("RESULT " + json.dumps(result))
''')

#: Texts whose answers differ between words and substrings: ``registry.search(text=...)`` is words everywhere.
TEXTS = ["sent", "ente", "image feature", "tf1 hub", "EMBED text", "features"]
TEXT_SEARCH_SCRIPT = textwrap.dedent('''
    import json, registry
    print("RESULT " + json.dumps({text: [v.handle for v in registry.search(text=text)] for text in TEXTS}))
''').replace("TEXTS", repr(TEXTS))
CLIENT_SCRIPT = CLIENT_SCRIPT.replace("in TEXTS}", "in " + repr(TEXTS) + "}")

OFFLINE_SCRIPT = textwrap.dedent('''
    import json
    import numpy as np, tensorflow as tf, registry
    result = {"tf2": type(registry.load("text/embed/1", mode="tf2")).__name__}
    try:
        registry.load("text/embed/2", mode="tf2")
        result["unseen"] = "loaded"
    except registry.OfflineError as error:
        result["unseen"] = "OfflineError"
    print("RESULT " + json.dumps(result))
''')


def run_client(script: str, env: dict, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


def client_env(server, token: str | None, cache_dir, **extra) -> dict:
    env = {k: v for k, v in server.env.items() if not k.startswith("MODEL_REGISTRY_")}
    env.update({"MODEL_REGISTRY_URL": server.url, "MODEL_REGISTRY_CACHE_DIR": str(cache_dir),
                # where a client that reached around the server would fail: nothing listens, no such bucket
                "MODEL_REGISTRY_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/nowhere",
                "MODEL_REGISTRY_STORAGE_URL": "gs://no-such-bucket-for-clients/registry", **extra})
    if token:
        env["MODEL_REGISTRY_TOKEN"] = token
    return env


def test_a_client_with_only_the_server_url_and_a_token_does_everything_through_the_server(registry_server, tmp_path):
    server = registry_server
    token = create_token(server.env, "client", "publish")
    result = run_client(CLIENT_SCRIPT, client_env(server, token, tmp_path / "cache"), str(REFERENCE_DIR))
    assert result["published"] == ["text/embed/1", "vision/features/1"]
    assert result["alias"] == ["prod"]
    assert result["search"] == ["vision/features/1"]
    # Text is words, the same in client mode (the server's search) and locally (the library on the catalog).
    local = run_client(TEXT_SEARCH_SCRIPT, {k: v for k, v in server.env.items() if k != "MODEL_REGISTRY_URL"})
    assert result["text_search"] == local == {
        "sent": ["text/embed/1"], "ente": [], "image feature": ["vision/features/1"],
        "tf1 hub": ["vision/features/1"], "EMBED text": ["text/embed/1"], "features": ["vision/features/1"]}
    assert result["versions"] == ["text/embed/1"]
    assert result["get_version"] == "text/embed/1"
    assert result["interchangeable"] is True
    assert result["tf2_matches"] and result["keras_matches"] and result["module_matches"]
    assert result["delete"] == ["AccessDenied", True, True]  # a publish token may not delete
    assert result["missing"] == ["VersionNotFound", True, False]
    assert result["bad claim"] == ["SignatureError", True, False]
    assert result["aliases_after"] == []
    # the server holds what the client published; the client never had its database or bucket
    status, body = server.json("GET", "/api/v1/models/text/embed/versions/1")
    assert status == 200 and body["description"] == "sentences"
    assert "client" not in server.log() or token not in server.log()

    # Offline, with the server stopped: what was fetched loads by pinned handle; nothing else does.
    server.stop()
    offline = run_client(OFFLINE_SCRIPT, client_env(server, token, tmp_path / "cache", MODEL_REGISTRY_OFFLINE="1"))
    assert offline == {"tf2": offline["tf2"], "unseen": "OfflineError"}


def test_a_client_of_a_stopped_server_gets_a_typed_error_naming_the_url(registry_server, tmp_path):
    server = registry_server
    server.stop()
    script = textwrap.dedent('''
        import json, registry
        try:
            registry.get_version("text/embed/1")
        except registry.RegistryError as error:
            print("RESULT " + json.dumps([type(error).__name__, str(error)]))
    ''')
    name, message = run_client(script, client_env(server, None, tmp_path / "cache"))
    assert name == "ServerError" and server.url in message and "MODEL_REGISTRY_URL" in message


def test_metadata_of_any_reasonable_size_travels_in_client_mode_and_bad_metadata_is_refused_here(registry_server,
                                                                                                tmp_path):
    """The metadata travels as the upload's JSON manifest, not in the URL: a 64 kB description arrives whole."""
    from registry.api import Registry
    from registry.catalog.models import VersionMetadata
    from registry.errors import MetadataError

    server = registry_server
    client = Registry(server_url=server.url, token=create_token(server.env, "client", "publish"),
                      cache_dir=tmp_path / "cache")
    assert client.is_client
    description = "".join(f"line {n}: a long description, as a model card would be.\n" for n in range(1200))
    assert len(description.encode()) > 64_000
    published = client.publish(REFERENCE_DIR / "tf2_text_embedding", name="text/long",
                               metadata=VersionMetadata(description=description), tasks=["text_embedding"])
    assert published.description == description
    status, body = server.json("GET", "/api/v1/models/text/long/versions/1")
    assert status == 200 and body["description"] == description
    child = client.publish(REFERENCE_DIR / "tf2_text_embedding", name="text/long", parent=published.handle)
    assert child.parent == "text/long/1" and child.description == ""

    with pytest.raises(MetadataError, match="description"):
        client.publish(REFERENCE_DIR / "tf2_text_embedding", name="text/long", description={"not": "text"})
    assert [v.version for v in client.list_versions("text/long")] == [1, 2]
