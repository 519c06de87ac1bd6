"""Small security gaps of the server, each closed: cross-site sign-in, what /healthz tells a stranger, tokens echoed
into pages, server paths in messages, uploads that trickle. Each test fails on the behaviour before the fix."""

from __future__ import annotations

import http.client
import io
import json
import socket
import tarfile
import time
from pathlib import Path

import pytest

from tests.server_support import create_token, multipart_publish_body
from tests.services import LOCALHOST


@pytest.fixture
def locked_server(start_registry_server):
    """A server whose reads need a token, with a read token beside its admin one."""
    server = start_registry_server(extra_env={"MODEL_REGISTRY_REQUIRE_READ_TOKEN": "1"})
    server.read_token = create_token(server.env, "reader", "read")
    return server


def _form(server, path: str, fields: str, **headers: str) -> tuple[int, dict, bytes]:
    """POST a form as a browser would, without following the redirect (its ``Set-Cookie`` is what counts)."""
    connection = http.client.HTTPConnection(LOCALHOST, server.port, timeout=30)
    try:
        connection.request("POST", path, body=fields.encode(),
                           headers={"Content-Type": "application/x-www-form-urlencoded", **headers})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_sign_in_and_out_from_another_site_are_refused(locked_server):
    server = locked_server
    fields = f"token={server.read_token}&next=/"
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Referer": "http://evil.example/page"}, {"Sec-Fetch-Site": "cross-site"}):
        status, response_headers, body = _form(server, "/signin", fields, **headers)
        assert status == 403, (headers, status)
        assert "set-cookie" not in response_headers
        assert _form(server, "/signout", "", **headers)[0] == 403
    host = f"{LOCALHOST}:{server.port}"
    for headers in ({"Origin": f"http://{host}"}, {"Referer": f"http://{host}/signin"}, {}):  # {}: not a browser
        status, response_headers, _ = _form(server, "/signin", fields, **headers)
        assert status == 303 and "model_registry_token" in response_headers.get("set-cookie", ""), headers
        assert _form(server, "/signout", "", **headers)[0] == 303


def test_healthz_tells_an_anonymous_caller_only_its_status_where_reads_need_a_token(locked_server, registry_server):
    status, body = locked_server.json("GET", "/healthz")
    assert status == 200 and body == {"status": "ok"}
    status, body = locked_server.json("GET", "/healthz", token=locked_server.read_token)
    assert status == 200 and body["catalog"] and body["version"]
    status, body = locked_server.json("GET", "/healthz", token="not-a-token")
    assert status == 200 and body == {"status": "ok"}
    status, body = registry_server.json("GET", "/healthz")  # reads open: unchanged
    assert status == 200 and "catalog" in body


def test_a_token_in_a_url_is_never_echoed_into_a_page(locked_server):
    secret = "tok_" + "s3cr3t" * 6
    for path in (f"/?token={secret}&task=text_embedding", f"/pub/m?access_token={secret}",
                 f"/signin?next=/%3Ftoken%3D{secret}"):
        status, _, body = locked_server.request("GET", path, headers={"Accept": "text/html"})
        assert status in (200, 401, 404), (path, status)
        assert secret not in body.decode(), path
    status, _, body = locked_server.request("GET", f"/?token={secret}&task=text_embedding",
                                            headers={"Accept": "text/html"})
    assert status == 401 and "task=text_embedding" in body.decode()  # the harmless rest of the query stays


def _not_a_model() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"just notes"
        info = tarfile.TarInfo("README")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_refusals_never_show_the_servers_paths(registry_server):
    server = registry_server
    cache = server.env["MODEL_REGISTRY_CACHE_DIR"]
    storage = server.env["MODEL_REGISTRY_STORAGE_URL"]
    status, body = server.publish("pub/notes", _not_a_model())
    assert status == 422 and body["type"] == "FormatError", body
    assert cache not in body["message"] and storage not in body["message"] and "/w-" not in body["message"]
    assert body["message"].startswith("the uploaded model is not a model directory"), body["message"]
    status, _, page = server.request("POST", "/api/v1/models/pub/notes/versions", body=b"x",
                                     headers={"Authorization": f"Bearer {server.admin_token}",
                                              "Content-Type": "multipart/form-data; boundary=b"})
    assert cache not in page.decode()


def _start_upload(server, body: bytes, content_type: str) -> socket.socket:
    sock = socket.create_connection((LOCALHOST, server.port), timeout=30)
    sock.sendall((f"POST /api/v1/models/pub/slow/versions HTTP/1.1\r\nHost: {LOCALHOST}\r\n"
                  f"Authorization: Bearer {server.admin_token}\r\nContent-Type: {content_type}\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode())
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict]:
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body[body.index(b"{"):] if b"{" in body else b"{}")


def _work_dirs(server) -> list[Path]:
    tmp = Path(server.env["MODEL_REGISTRY_CACHE_DIR"]) / "tmp"
    return sorted(tmp.iterdir()) if tmp.is_dir() else []


@pytest.mark.parametrize("how", ["stops", "trickles"])
def test_an_upload_that_stops_or_trickles_is_dropped_and_its_work_directory_removed(start_registry_server, reference,
                                                                                      how):
    server = start_registry_server(extra_env={"MODEL_REGISTRY_UPLOAD_IDLE_TIMEOUT": "1",
                                              "MODEL_REGISTRY_UPLOAD_MIN_RATE": "2000"})
    content_type, body = multipart_publish_body({}, reference.archive("tf2_text_embedding").read_bytes())
    sock = _start_upload(server, body, content_type)
    sock.sendall(body[:1000])
    if how == "stops":
        time.sleep(1.5)
    else:
        for offset in range(1000, 1040):  # one byte every 0.1 s: 10 bytes/s, far under 2000
            try:
                sock.sendall(body[offset:offset + 1])
            except OSError:
                break  # the server already answered and closed
            time.sleep(0.1)
    status, answer = _answer(sock)
    sock.close()
    assert status == 408 and answer["type"] == "UploadStalled", answer
    deadline = time.monotonic() + 10
    while _work_dirs(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _work_dirs(server) == []
    assert server.json("GET", "/api/v1/models")[1]["items"] == []
