"""A publish's body: a JSON ``manifest`` part, then the ``archive`` part, parsed as it streams.

The server app runs in this process (FastAPI's test client) over a real SQLite
catalog and a local storage folder. Every malformed body is a typed 4xx JSON
error and leaves nothing in storage, the catalog or the work directory; any
standard multipart encoder (here httpx's) is understood, not only the client's.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from registry.api import Registry
from registry.client.publishing import MultipartUpload
from registry.server.app import create_app
from registry.server.settings import ServerSettings
from registry.server.uploads import MANIFEST_LIMIT
from tests.conftest import REFERENCE_DIR
from tests.server_support import multipart_publish_body

ARCHIVE = (REFERENCE_DIR / "tf2_text_embedding.tar.gz").read_bytes()
PUBLISH = "/api/v1/models/text/embed/versions"


@pytest.fixture
def served(tmp_path):
    registry = Registry(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "storage"),
                        cache_dir=tmp_path / "cache")
    token, _ = registry.catalog.tokens.create(name="admin", scope="admin")
    app = create_app(registry, ServerSettings(max_upload_bytes=len(ARCHIVE) + 10))
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        client.registry = registry
        client.tmp_path = tmp_path
        yield client
    registry.catalog.close()


def post(client, body: bytes, content_type: str, **headers):
    response = client.post(PUBLISH, content=body, headers={"Content-Type": content_type, **headers})
    return response.status_code, response.json()


def assert_nothing_written(client) -> None:
    assert client.get("/api/v1/models/text/embed").status_code == 404
    storage = client.tmp_path / "storage"
    assert not storage.exists() or not any(p.is_file() for p in storage.rglob("*"))
    assert not [p for p in (client.tmp_path / "cache").rglob("*") if p.is_file() and "tmp" in p.parts]


def test_the_manifest_says_what_is_recorded(served):
    manifest = {"description": "x" * 70_000, "tasks": ["text_embedding"]}
    status, body = post(served, *reversed(multipart_publish_body(manifest, ARCHIVE)))
    assert status == 201, body
    assert body["description"] == manifest["description"]
    assert "text_embedding" in {t["task"] for t in body["tasks"]}
    status, child = post(served, *reversed(multipart_publish_body({"parent": "text/embed/1"}, ARCHIVE)))
    assert status == 201 and child["parent"] == "text/embed/1" and child["description"] == ""


def test_the_clients_encoder_is_a_plain_multipart_body(served):
    import io

    upload = MultipartUpload({"description": "from the client's encoder"}, io.BytesIO(ARCHIVE), len(ARCHIVE))
    chunks = []
    while chunk := upload.read(1000):
        chunks.append(chunk)
    body = b"".join(chunks)
    assert len(body) == upload.length
    status, record = post(served, body, upload.content_type)
    assert status == 201 and record["description"] == "from the client's encoder"


def test_another_multipart_encoder_is_understood(served):
    response = served.post(PUBLISH, files={
        "manifest": (None, json.dumps({"description": "sent by httpx"}), "application/json"),
        "archive": ("model.tar.gz", ARCHIVE, "application/gzip")})
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "sent by httpx"


def _framed(*parts: tuple[str, bytes], close: bool = True, boundary: str = "b0und") -> tuple[bytes, str]:
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n".encode() + data + b"\r\n"
                    for name, data in parts)
    return body + (f"--{boundary}--\r\n".encode() if close else b""), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("case, status, error_type, words", [
    ("a bare archive", 422, "ArtifactError", "multipart/form-data"),
    ("manifest not JSON", 422, "MetadataError", "not JSON"),
    ("manifest a list", 422, "MetadataError", "not an object"),
    ("unknown manifest field", 422, "MetadataError", "'licence_text'"),
    ("wrong type in the manifest", 422, "MetadataError", "description"),
    ("archive first", 422, "MetadataError", "where the 'manifest' part belongs"),
    ("no archive", 422, "ArtifactError", "no 'archive' part"),
    ("a third part", 422, "ArtifactError", "after the archive"),
    ("empty archive", 422, "ArtifactError", "empty"),
    ("cut before the closing boundary", 422, "ArtifactError", "closing boundary"),
    ("manifest over its bound", 413, "UploadTooLarge", "manifest"),
    ("archive over the limit", 413, "UploadTooLarge", "MODEL_REGISTRY_MAX_UPLOAD_BYTES"),
    ("wrong sha256", 422, "IntegrityError", "sha256"),
])
def test_a_malformed_body_is_a_typed_error_and_writes_nothing(served, case, status, error_type, words):
    manifest = json.dumps({"description": "d"}).encode()
    headers = {}
    if case == "a bare archive":
        body, content_type = ARCHIVE, "application/gzip"
    elif case == "manifest not JSON":
        body, content_type = _framed(("manifest", b"{description: d"), ("archive", ARCHIVE))
    elif case == "manifest a list":
        body, content_type = _framed(("manifest", b"[1, 2]"), ("archive", ARCHIVE))
    elif case == "unknown manifest field":
        body, content_type = _framed(("manifest", b'{"licence_text": "x"}'), ("archive", ARCHIVE))
    elif case == "wrong type in the manifest":
        body, content_type = _framed(("manifest", b'{"description": ["a", "list"]}'), ("archive", ARCHIVE))
    elif case == "archive first":
        body, content_type = _framed(("archive", ARCHIVE), ("manifest", manifest))
    elif case == "no archive":
        body, content_type = _framed(("manifest", manifest))
    elif case == "a third part":
        body, content_type = _framed(("manifest", manifest), ("archive", ARCHIVE), ("extra", b"x"))
    elif case == "empty archive":
        body, content_type = _framed(("manifest", manifest), ("archive", b""))
    elif case == "cut before the closing boundary":
        body, content_type = _framed(("manifest", manifest), ("archive", ARCHIVE), close=False)
    elif case == "manifest over its bound":
        big = json.dumps({"description": "x" * MANIFEST_LIMIT}).encode()
        body, content_type = _framed(("manifest", big), ("archive", ARCHIVE))
    elif case == "archive over the limit":
        body, content_type = _framed(("manifest", manifest), ("archive", ARCHIVE + bytes(11)))
    else:
        body, content_type = _framed(("manifest", manifest), ("archive", ARCHIVE))
        headers["X-Content-SHA256"] = "0" * 64
    got, answer = post(served, body, content_type, **headers)
    assert (got, answer["type"]) == (status, error_type), answer
    assert words in answer["message"] and "Traceback" not in answer["message"]
    assert_nothing_written(served)


def test_the_openapi_document_describes_the_body_from_the_declared_record(served):
    from registry.catalog.models import PublishManifest

    spec = served.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/models/{publisher}/{model}/versions"]["post"]["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["manifest", "archive"]
    assert set(schema["properties"]["manifest"]["properties"]) == set(PublishManifest.model_fields)
