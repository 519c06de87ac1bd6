"""Local archives leave ``model-registry serve`` by ``sendfile`` (``registry.server.sendfile``): intact, on
kept-alive connections, counted only when complete; offered only where uvicorn's protocol can honour it."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import socket
import tarfile
import threading
import time

import pytest
import uvicorn
from starlette.responses import FileResponse

from registry.server.sendfile import PATHSEND, PathsendMiddleware
from tests.conftest import REFERENCE_DIR
from tests.services import LOCALHOST, free_port

#: Larger than loopback's socket buffers together, so an abandoned download stops mid-file.
NOISE_BYTES = 24 << 20


@pytest.mark.parametrize("protocol", ["httptools", "h11"])
def test_pathsend_is_offered_where_uvicorns_protocol_can_honour_it(protocol, tmp_path):
    """httptools' request cycle checks the body against Content-Length itself: offered; h11's keeps that inside
    h11, which would refuse a body it did not see: not offered, and Starlette copies as before. Either way the
    file arrives whole, twice on one kept-alive connection."""
    data = os.urandom(NOISE_BYTES)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    offered = []

    async def app(scope, receive, send):
        offered.append(PATHSEND in scope.get("extensions", {}))
        await FileResponse(path)(scope, receive, send)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(PathsendMiddleware(app), host=LOCALHOST, port=port, http=protocol,
                                           loop="uvloop", lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        connection = http.client.HTTPConnection(LOCALHOST, port, timeout=60)
        for _ in range(2):
            connection.request("GET", "/file")
            response = connection.getresponse()
            assert response.status == 200 and int(response.getheader("Content-Length")) == len(data)
            assert response.read() == data
        connection.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert offered == [protocol == "httptools"] * 2


def _big_archive() -> bytes:
    """The reference TF2 model with 24 MB of incompressible noise among its assets, as a .tar.gz."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for child in sorted((REFERENCE_DIR / "tf2_text_embedding").iterdir()):
            tar.add(child, arcname=child.name)
        noise = os.urandom(NOISE_BYTES)
        info = tarfile.TarInfo("assets/noise.bin")
        info.size = len(noise)
        tar.addfile(info, io.BytesIO(noise))
    return buffer.getvalue()


def test_served_archives_arrive_whole_and_an_abandoned_one_is_not_counted(registry_server):
    server = registry_server
    archive = _big_archive()
    status, body = server.publish("noise/model", archive)
    assert status == 201, body
    url = "/noise/model/1?tf-hub-format=compressed"

    connection = http.client.HTTPConnection(LOCALHOST, server.port, timeout=120)
    for _ in range(2):  # one kept-alive connection, two whole downloads
        connection.request("GET", url)
        response = connection.getresponse()
        assert response.status == 200 and int(response.getheader("Content-Length")) == len(archive)
        assert hashlib.sha256(response.read()).hexdigest() == hashlib.sha256(archive).hexdigest()
    connection.close()

    # A client that reads 64 KiB and hangs up.
    with socket.create_connection((LOCALHOST, server.port), timeout=60) as raw:
        raw.sendall(f"GET {url} HTTP/1.1\r\nHost: {LOCALHOST}\r\n\r\n".encode())
        received = 0
        while received < 64 << 10:
            received += len(raw.recv(64 << 10))
    time.sleep(1)
    # The server is unharmed, and counts the two whole downloads only.
    assert server.request("GET", url)[2] == archive
    deadline = time.monotonic() + 30
    while (counts := server.json("GET", "/api/v1/models/noise/model/downloads")[1])["total"] < 3:
        assert time.monotonic() < deadline, counts
        time.sleep(0.5)
    time.sleep(11)  # past the next flush: nothing more arrives
    assert server.json("GET", "/api/v1/models/noise/model/downloads")[1] == {"versions": {"1": 3}, "total": 3}
    assert f'"GET {url} HTTP/1.1" 200 {len(archive)} ' in server.log()  # the access log's byte count
