"""How a model URL hands its archive over: a signed redirect to the bucket, or nginx through X-Accel-Redirect.

- Redirect: a real server over the GCS emulator, reading the bucket with a service-account key made here (an
  RSA key from ``cryptography``; V4 signing is local, and the key's token endpoint is never asked, since the
  server only signs). The emulator serves signed URLs as GCS does (it does not check signatures, so the test
  checks what the URL carries). Where the server must read the bucket with that key (proxy mode), the key
  names a token endpoint on 127.0.0.1 standing in for Google's OAuth server, which no test can reach.
- Front proxy: real nginx (``/usr/sbin/nginx``) running the README's configuration in front of a real server.

Both deliver the archive intact to the unmodified tensorflow_hub 0.16.1 client; access is refused before
any redirect; each download is counted once.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import re
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from registry import Registry
from tests.conftest import REFERENCE_DIR
from tests.front_proxy import Nginx, readme_nginx_site
from tests.refstack import run_hub_client_script
from tests.services import LOCALHOST, ServiceUnavailable, free_port

ARCHIVE = (REFERENCE_DIR / "tf2_text_embedding.tar.gz").read_bytes()

HUB_SCRIPT = '''
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_hub as hub

url, ref = sys.argv[1], sys.argv[2]
data = np.load(f"{ref}/tf2_text_embedding.expected.npz")
model = hub.load(url)
got = model(tf.constant(data["in:__call__:sentences"])).numpy()
print("RESULT " + json.dumps({"hub": hub.__version__,
                              "same": bool(np.allclose(got, data["out:__call__:default"], atol=1e-5))}))
'''


def _raw_get(url: str, headers: dict | None = None) -> http.client.HTTPResponse:
    """One GET that does not follow redirects (urllib would)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=60)
    connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response


def _hub_loads(url: str, cache: Path) -> None:
    done = run_hub_client_script(HUB_SCRIPT, url, REFERENCE_DIR, env={"TFHUB_CACHE_DIR": str(cache)})
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-2000:] + done.stderr[-4000:]
    assert json.loads(lines[-1][len("RESULT "):]) == {"hub": "0.16.1", "same": True}


def _counts(server, name: str, expected_total: int) -> dict:
    """The catalog's counts of ``name`` once they reach ``expected_total`` (written every few seconds)."""
    deadline = time.monotonic() + 30
    while True:
        counts = server.json("GET", f"/api/v1/models/{name}/downloads", token=server.admin_token)[1]
        if counts["total"] >= expected_total or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


# --------------------------------------------------------------------------- bucket redirects

def _service_account_key(path: Path, token_uri: str = "https://oauth2.googleapis.com/token") -> dict:
    """A service-account key file as Google issues one, with a fresh RSA key: signing needs nothing else
    (reading does: an access token from ``token_uri``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "registry-tests", "private_key_id": "test-key-1",
            "private_key": pem, "client_email": "registry-server@registry-tests.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": token_uri}
    path.write_text(json.dumps(info))
    return info


@pytest.fixture
def bucket_catalog(gcs_bucket, tmp_path):
    """A catalog whose versions live in an emulated bucket: text/embed/1, published here (anonymous credentials);
    (database URL, bucket URL, the version's sha256)."""
    database_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    record = Registry(database_url=database_url, storage_url=gcs_bucket,
                      cache_dir=tmp_path / "publisher-cache").publish(REFERENCE_DIR / "tf2_text_embedding",
                                                                      name="text/embed")
    return database_url, gcs_bucket, record.sha256


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_bucket_read_with_a_key_redirects_to_a_signed_url_the_hub_client_follows(
        bucket_catalog, gcs_emulator, start_registry_server, tmp_path):
    database_url, bucket, sha256 = bucket_catalog
    key = _service_account_key(tmp_path / "key.json")
    server = start_registry_server(database_url=database_url, storage_url=bucket,
                                   extra_env={"FSSPEC_GCS_TOKEN": str(tmp_path / "key.json")})
    url = f"{server.url}/text/embed/1?tf-hub-format=compressed"

    response = _raw_get(url)
    assert response.status == 302 and response.body == b""  # type: ignore[attr-defined]
    target = response.getheader("Location")
    assert target.startswith(f"{gcs_emulator.endpoint}/{bucket[5:].split('/')[0]}/registry/sha256/")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"] and query["X-Goog-Expires"] == ["300"]
    assert query["X-Goog-Credential"][0].startswith(key["client_email"] + "/")
    assert re.fullmatch(r"[0-9a-f]{512}", query["X-Goog-Signature"][0])  # RSA-2048: 256 bytes, hex
    assert response.getheader("Cache-Control") == "no-store"
    assert response.getheader("X-Model-Sha256") == sha256
    with urllib.request.urlopen(target) as redirected:  # the bucket sends the very bytes, with no credentials
        assert _sha256(redirected.read()) == sha256
    with urllib.request.urlopen(url) as followed:  # as curl -L does
        assert _sha256(followed.read()) == sha256

    # A HEAD needs no bytes: the server answers it, without a redirect.
    status, headers, _ = server.request("HEAD", "/text/embed/1?tf-hub-format=compressed")
    headers = {name.lower(): value for name, value in headers.items()}
    assert status == 200 and headers["x-model-sha256"] == sha256 and int(headers["content-length"]) > 0

    # The unmodified hub client follows the redirect; the registry's own client too, checking the sha256.
    _hub_loads(f"{server.url}/text/embed/1", tmp_path / "hub-cache")
    client = Registry(server_url=server.url, cache_dir=tmp_path / "client-cache")
    path = client.resolve("text/embed/1")
    assert (Path(path) / "saved_model.pb").is_file()

    # Three redirects answered (the raw GET, curl -L's, the hub client's) and the client's: four, each once.
    assert _counts(server, "text/embed", 4) == {"versions": {"1": 4}, "total": 4}
    assert "X-Goog-Signature" not in server.log()  # the access log shows no signed URL


def test_access_is_refused_before_any_redirect(bucket_catalog, start_registry_server, tmp_path):
    database_url, bucket, sha256 = bucket_catalog
    _service_account_key(tmp_path / "key.json")
    server = start_registry_server(database_url=database_url, storage_url=bucket,
                                   extra_env={"FSSPEC_GCS_TOKEN": str(tmp_path / "key.json"),
                                              "MODEL_REGISTRY_REQUIRE_READ_TOKEN": "1"})
    url = f"{server.url}/text/embed/1?tf-hub-format=compressed"
    for headers in ({}, {"Authorization": "Bearer mrt_not-a-token"}):
        refused = _raw_get(url, headers)
        assert refused.status == 401 and refused.getheader("Location") is None
        assert b"X-Goog" not in refused.body  # type: ignore[attr-defined]
    assert _raw_get(url.replace("/1?", "/7?"), {"Authorization": f"Bearer {server.admin_token}"}).status == 404
    allowed = _raw_get(url, {"Authorization": f"Bearer {server.admin_token}"})
    assert allowed.status == 302 and "X-Goog-Signature=" in allowed.getheader("Location")
    # Only the allowed one counted.
    assert _counts(server, "text/embed", 1) == {"versions": {"1": 1}, "total": 1}


def test_proxy_mode_and_storage_that_cannot_sign_stream_through(bucket_catalog, start_registry_server, tmp_path):
    """Anonymous credentials cannot sign: unset, the server streams; ``redirect`` asked for is a start-up error."""
    database_url, bucket, sha256 = bucket_catalog
    server = start_registry_server(database_url=database_url, storage_url=bucket)
    response = _raw_get(f"{server.url}/text/embed/1?tf-hub-format=compressed")
    assert response.status == 200 and _sha256(response.body) == sha256  # type: ignore[attr-defined]

    _service_account_key(tmp_path / "key.json")
    with pytest.raises(ServiceUnavailable, match=r"MODEL_REGISTRY_DOWNLOADS='redirect' is not valid: the storage "
                                                 r"gs://\S+ cannot sign URLs"):
        start_registry_server(database_url=database_url, storage_url=bucket, admin_token=False,
                              extra_env={"MODEL_REGISTRY_DOWNLOADS": "redirect"})


class _TokenEndpoint(http.server.BaseHTTPRequestHandler):
    """Google's OAuth token endpoint, which a test cannot reach: any signed assertion gets a token (the emulator
    takes any)."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"access_token": "test-token", "expires_in": 3600, "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_proxy_mode_streams_from_a_bucket_that_could_sign(bucket_catalog, start_registry_server, tmp_path):
    """``MODEL_REGISTRY_DOWNLOADS=proxy`` with a key that signs: the server reads the bucket (with the key's
    token) and sends the bytes; no redirect."""
    database_url, bucket, sha256 = bucket_catalog
    endpoint = http.server.ThreadingHTTPServer((LOCALHOST, 0), _TokenEndpoint)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    try:
        _service_account_key(tmp_path / "key.json", token_uri=f"http://{LOCALHOST}:{endpoint.server_port}/token")
        server = start_registry_server(database_url=database_url, storage_url=bucket,
                                       extra_env={"FSSPEC_GCS_TOKEN": str(tmp_path / "key.json"),
                                                  "MODEL_REGISTRY_DOWNLOADS": "proxy"})
        response = _raw_get(f"{server.url}/text/embed/1?tf-hub-format=compressed")
        assert response.status == 200 and response.getheader("Location") is None
        assert _sha256(response.body) == sha256  # type: ignore[attr-defined]
        # The same storage, unset: a redirect.
        other = start_registry_server(database_url=database_url, storage_url=bucket, admin_token=False,
                                      extra_env={"FSSPEC_GCS_TOKEN": str(tmp_path / "key.json")})
        assert _raw_get(f"{other.url}/text/embed/1?tf-hub-format=compressed").status == 302
    finally:
        endpoint.shutdown()


# --------------------------------------------------------------------------- front proxy (nginx)

def test_behind_nginx_local_archives_go_out_through_x_accel_redirect(start_registry_server, tmp_path):
    server = start_registry_server(extra_env={"MODEL_REGISTRY_ACCEL_REDIRECT": "/internal-archives/",
                                              "MODEL_REGISTRY_REQUIRE_READ_TOKEN": "1"})
    assert server.publish("text/embed", ARCHIVE)[0] == 201
    storage = Path(server.env["MODEL_REGISTRY_STORAGE_URL"])
    sha256 = hashlib.sha256(ARCHIVE).hexdigest()

    # The registry alone: an empty answer naming the file under the internal prefix, with the archive's headers.
    token = {"Authorization": f"Bearer {server.admin_token}"}
    direct = _raw_get(f"{server.url}/text/embed/1?tf-hub-format=compressed", token)
    assert direct.status == 200 and direct.body == b""  # type: ignore[attr-defined]
    assert direct.getheader("X-Accel-Redirect") == f"/internal-archives/sha256/{sha256[:2]}/{sha256}.tar.gz"
    assert (storage / "sha256" / sha256[:2] / f"{sha256}.tar.gz").is_file()
    # Its legacy spellings (a tfhub.dev path, the bucket's .tar.gz) hand the same file over the same way.
    assert server.json("POST", "/api/v1/models/text/embed/versions/1/legacy-handles", token=server.admin_token,
                       json_body={"handles": ["https://tfhub.dev/google/embed/1"]})[0] == 200
    for legacy in ("/google/embed/1?tf-hub-format=compressed", "/tfhub-modules/google/embed/1.tar.gz"):
        answer = _raw_get(server.url + legacy, token)
        assert answer.status == 200 and answer.body == b"", legacy  # type: ignore[attr-defined]
        assert answer.getheader("X-Accel-Redirect") == direct.getheader("X-Accel-Redirect"), legacy

    port = free_port()
    nginx = Nginx(tmp_path / "nginx", readme_nginx_site(upstream=f"{LOCALHOST}:{server.port}",
                                                        listen=f"{LOCALHOST}:{port}", storage=storage), port).start()
    try:
        front = f"http://{LOCALHOST}:{port}"
        response = _raw_get(f"{front}/text/embed/1?tf-hub-format=compressed", token)
        assert response.status == 200 and response.body == ARCHIVE  # type: ignore[attr-defined]
        assert response.getheader("X-Accel-Redirect") is None, response.getheaders()
        assert response.getheader("ETag") == f'"{sha256}"'
        assert response.getheader("Content-Type") == "application/x-tar+gzip"
        assert response.getheader("X-Model-Sha256") == sha256
        assert response.getheader("Cache-Control") == "public, max-age=31536000, immutable"
        assert "text_embed_1.tar.gz" in response.getheader("Content-Disposition")

        # Access is the registry's: refused before nginx sees a file; and the internal location is not reachable.
        refused = _raw_get(f"{front}/text/embed/1?tf-hub-format=compressed")
        assert refused.status == 401 and refused.body != ARCHIVE  # type: ignore[attr-defined]
        hidden = _raw_get(f"{front}/internal-archives/sha256/{sha256[:2]}/{sha256}.tar.gz", token)
        assert hidden.status == 404 and hidden.body != ARCHIVE  # type: ignore[attr-defined]
        # Pages, the API and HEAD pass through to the registry.
        assert _raw_get(f"{front}/api/v1/models/text/embed/versions/1", token).status == 200

        # The unmodified hub client, through nginx (reads open for it: a second server over the same catalog).
        open_server = start_registry_server(database_url=server.env["MODEL_REGISTRY_DATABASE_URL"],
                                            storage_url=str(storage), admin_token=False,
                                            extra_env={"MODEL_REGISTRY_ACCEL_REDIRECT": "/internal-archives/"})
        open_port = free_port()
        open_nginx = Nginx(tmp_path / "nginx-open", readme_nginx_site(
            upstream=f"{LOCALHOST}:{open_server.port}", listen=f"{LOCALHOST}:{open_port}", storage=storage),
            open_port).start()
        try:
            _hub_loads(f"http://{LOCALHOST}:{open_port}/text/embed/1", tmp_path / "hub-cache")
        finally:
            open_nginx.stop()
        assert "/internal-archives/" not in open_nginx.error_log()
    finally:
        nginx.stop()
    # Counted once each: the direct hand-over, the two legacy spellings and the one through nginx (the refused one
    # not; the hub client's on the other server, which counts into the same catalog).
    assert _counts(server, "text/embed", 5) == {"versions": {"1": 5}, "total": 5}


def test_accel_redirect_needs_a_local_storage_folder(gcs_bucket, start_registry_server):
    with pytest.raises(ServiceUnavailable, match=r"MODEL_REGISTRY_ACCEL_REDIRECT='/internal-archives/' is not "
                                                 r"valid: it hands local files to a front proxy"):
        start_registry_server(storage_url=gcs_bucket, admin_token=False,
                              extra_env={"MODEL_REGISTRY_ACCEL_REDIRECT": "/internal-archives/"})
