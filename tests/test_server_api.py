"""The server's JSON API and model URLs on a real ``model-registry serve``: answers, errors, hostile uploads."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

from tests.conftest import REFERENCE_DIR
from tests.server_support import multipart_publish_body

TF2 = (REFERENCE_DIR / "tf2_text_embedding.tar.gz").read_bytes()
TF1 = (REFERENCE_DIR / "tf1_image_feature_vector.tar.gz").read_bytes()


@pytest.fixture(params=["sqlite+local", "postgres+gcs"])
def any_server(request, start_registry_server):
    """A server over an SQLite file and a local folder, or over PostgreSQL and a bucket in the GCS emulator."""
    if request.param == "sqlite+local":
        return start_registry_server()
    postgres = request.getfixturevalue("postgres_server")
    bucket = request.getfixturevalue("gcs_bucket")
    return start_registry_server(database_url=postgres.url(postgres.create_database()), storage_url=bucket)


def publish(server, name: str, archive: bytes, **manifest) -> tuple[int, dict]:
    return server.publish(name, archive, **manifest)


def storage_files(server) -> list[Path]:
    root = Path(server.env["MODEL_REGISTRY_STORAGE_URL"])
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_model_urls_serve_the_stored_archive_for_pinned_newest_and_alias(any_server):
    server = any_server
    assert publish(server, "text/embed", TF2, description="first")[0] == 201
    status, v2 = publish(server, "text/embed", TF1)
    assert status == 201 and v2["version"] == 2
    assert server.json("PUT", "/api/v1/models/text/embed/aliases/prod", token=server.admin_token,
                       json_body={"version": 1})[0] == 200
    for path, expected in [("/text/embed/1", TF2), ("/text/embed", TF1), ("/text/embed@prod", TF2)]:
        status, headers, body = server.request("GET", path + "?tf-hub-format=compressed")
        assert status == 200 and body == expected, path
        assert int(headers["content-length"]) == len(expected)
        assert headers["etag"] == f'"{hashlib.sha256(expected).hexdigest()}"'
    assert "immutable" in server.request("GET", "/text/embed/1?tf-hub-format=compressed")[1]["cache-control"]
    assert "no-cache" in server.request("GET", "/text/embed?tf-hub-format=compressed")[1]["cache-control"]
    status, headers, body = server.request("HEAD", "/text/embed/1?tf-hub-format=compressed")
    assert status == 200 and body == b"" and int(headers["content-length"]) == len(TF2)
    # without the query a browser gets a page
    status, headers, body = server.request("GET", "/text/embed/1")
    assert status == 200 and headers["content-type"].startswith("text/html")
    # the uncompressed format is refused clearly, not answered with something the hub client misreads
    status, body = server.json("GET", "/text/embed/1?tf-hub-format=uncompressed")
    assert status == 400 and "compressed" in body["message"]


def test_json_api_reads(any_server):
    server = any_server
    publish(server, "text/embed", TF2, description="sentences")
    publish(server, "text/embed", TF2, parent="text/embed/1")
    publish(server, "vision/features", TF1, tasks=["image_feature_vector"])
    status, models = server.json("GET", "/api/v1/models?limit=1")
    assert status == 200 and [m["name"] for m in models["items"]] == ["embed"] and models["next"] == "text/embed"
    status, page2 = server.json("GET", "/api/v1/models?limit=1&after=text/embed")
    assert [m["name"] for m in page2["items"]] == ["features"] and page2["next"] is None
    status, found = server.json("GET", "/api/v1/search?task=image_feature_vector")
    assert [v["model"] for v in found["items"]] == ["features"]
    status, found = server.json("GET", "/api/v1/search?q=SENTENCES")
    assert [f"{v['publisher']}/{v['model']}/{v['version']}" for v in found["items"]] == ["text/embed/2"]
    status, version = server.json("GET", "/api/v1/models/text/embed/versions/2")
    assert version["parent"] == "text/embed/1" and version["signatures"]
    assert {c["operation"] for c in version["matrix"]} == {"load", "fine_tune", "create"}
    assert not version["artifact_uri"].startswith("/")  # clients see the server's URL, not its storage
    status, lineage = server.json("GET", "/api/v1/models/text/embed/versions/2/lineage")
    assert [v["version"] for v in lineage["items"]] == [2, 1]
    status, children = server.json("GET", "/api/v1/models/text/embed/versions/1/children")
    assert [v["version"] for v in children["items"]] == [2]
    status, location = server.json("GET", "/api/v1/models/text/embed/versions/latest/location")
    assert location["url"].endswith("/text/embed/2?tf-hub-format=compressed")
    status, answer = server.json("GET", "/api/v1/interchangeable?a=text/embed/1&b=vision/features/1")
    assert status == 200 and answer["interchangeable"] is False and answer["reasons"]


@pytest.mark.parametrize("path, status, code", [
    ("/api/v1/models/text/nope/versions/1", 404, "not_found"),
    ("/api/v1/models/Bad%20Name/x/versions/1", 400, "bad_handle"),
    ("/api/v1/models/text/embed/versions/99", 404, "not_found"),
    ("/api/v1/search?image_size=big", 400, "bad_query"),
    ("/api/v1/search?limit=100000", 400, "bad_query"),
    ("/api/v1/no/such/route/at/all", 404, "not_found"),
    ("/text/embed/notanumber?tf-hub-format=compressed", 400, "bad_handle"),
])
def test_errors_are_json_with_fitting_statuses(registry_server, path, status, code):
    publish(registry_server, "text/embed", TF2)
    got, headers, raw = registry_server.request("GET", path)
    body = json.loads(raw)
    assert (got, body["error"]) == (status, code), body
    assert "Traceback" not in raw.decode() and body["message"]


def test_conflicts_and_refusals(any_server):
    server = any_server
    publish(server, "text/embed", TF2)
    status, body = server.json("PUT", "/api/v1/models/text/embed/aliases/latest", token=server.admin_token,
                               json_body={"version": 1})
    assert status == 409 and body["type"] == "CatalogError"
    status, body = publish(server, "text/other", TF2, tasks=["image_feature_vector"])  # claims what it is not
    assert status == 422 and body["type"] == "SignatureError"
    status, body = server.publish("text/embed", TF2, headers={"X-Content-SHA256": "0" * 64})
    assert status == 422 and body["type"] == "IntegrityError"


def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _symlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, None


def _gzip_bomb(expanded: int) -> bytes:
    """A .tar.gz whose one member expands to ``expanded`` zero bytes, made without holding them."""
    header = tarfile.TarInfo("saved_model.pb")
    header.size = expanded
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(header.tobuf(format=tarfile.GNU_FORMAT))]
    block = bytes(1 << 20)
    for _ in range(expanded >> 20):
        out.append(compressor.compress(block))
    out.append(compressor.compress(bytes(1024)) + compressor.flush())
    return b"".join(out)


HOSTILE = {
    "dot-dot member": lambda: _tar_gz([_file("saved_model.pb"), _file("../escape.txt")]),
    "absolute member": lambda: _tar_gz([_file("saved_model.pb"), _file("/tmp/escape.txt")]),
    "symlink member": lambda: _tar_gz([_file("saved_model.pb"), _symlink("variables", "/etc")]),
    "gzip bomb": lambda: _gzip_bomb(1 << 30),
    "truncated gzip": lambda: TF2[: len(TF2) // 2],
    "not a model": lambda: _tar_gz([_file("README.md", b"hello")]),
    "not an archive": lambda: b"just some bytes, not gzip",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_or_broken_upload_is_refused_and_leaves_nothing(registry_server, kind):
    server = registry_server
    status, body = publish(server, "evil/model", HOSTILE[kind]())
    assert 400 <= status < 500, (kind, status, body)
    assert body["error"] and body["message"] and "Traceback" not in body["message"]
    assert server.json("GET", "/api/v1/models/evil/model")[0] == 404
    assert storage_files(server) == []
    work = Path(server.env["MODEL_REGISTRY_CACHE_DIR"])
    leftovers = [p for p in work.rglob("*") if p.is_file() and "tmp" in p.parts]
    assert leftovers == []


def test_an_upload_cut_short_is_refused_and_leaves_nothing(registry_server):
    server = registry_server
    content_type, body = multipart_publish_body({}, TF2)
    request = (f"POST /api/v1/models/evil/cut/versions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {server.admin_token}\r\nContent-Type: {content_type}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body[: len(body) // 3]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    if answer:  # the server may answer a half-closed connection, or just close it
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500 and b'"error"' in answer, answer[:300]
    assert server.json("GET", "/api/v1/models/evil/cut")[0] == 404
    assert storage_files(server) == []


def test_an_upload_over_the_limit_is_413(start_registry_server):
    server = start_registry_server(extra_env={"MODEL_REGISTRY_MAX_UPLOAD_BYTES": str(len(TF2) - 1)})
    status, body = publish(server, "text/big", TF2)
    assert status == 413 and body["error"] == "too_large"
    assert storage_files(server) == []


def test_health_reports_an_unreachable_catalog_as_503(start_registry_server, postgres_server):
    server = start_registry_server(database_url=postgres_server.url(postgres_server.create_database()))
    status, body = server.json("GET", "/healthz")
    assert status == 200 and body["status"] == "ok" and "postgresql" in body["catalog"]
    postgres_server.drop_database(server.env["MODEL_REGISTRY_DATABASE_URL"].rsplit("/", 1)[1])
    status, body = server.json("GET", "/healthz")
    assert status == 503 and body["status"] == "unavailable"
    status, body = server.json("GET", "/api/v1/models")
    assert status in (503,) and body["error"] in ("unavailable", "busy"), body


SETTLE = """
import gc, json, sys
from registry.server.app import app_from_env
app_from_env()
print(json.dumps({"frozen": gc.get_freeze_count(), "sqlalchemy": "sqlalchemy" in sys.modules}))
"""


@pytest.mark.parametrize("catalog_answers", [True, False])
def test_a_server_worker_freezes_its_start_up_heap_with_the_database_stack_loaded(registry_env, tmp_path,
                                                                                  catalog_answers):
    """What every request would otherwise walk in each full collection is frozen once, catalog or not."""
    env = {**os.environ}
    if not catalog_answers:
        env["MODEL_REGISTRY_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:9/none"
    result = subprocess.run([sys.executable, "-c", SETTLE], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["sqlalchemy"] and facts["frozen"] > 10000, facts
    if not catalog_answers:
        assert "does not answer" in result.stderr
