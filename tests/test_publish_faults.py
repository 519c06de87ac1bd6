"""Publishing through a server that fails: lost responses, killed processes, a catalog outage.

Real processes throughout: ``model-registry serve`` (SIGKILLed and restarted), a TCP proxy that
swallows one answer after the server committed it, a PostgreSQL cluster stopped and started again
under client-mode reads and publishes.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

import registry
from registry.errors import CatalogUnavailable
from tests.server_support import multipart_publish_body
from tests.services import LOCALHOST, PostgresServer, ServiceUnavailable


class LoseOnePublishAnswer:
    """A TCP proxy to a server that forwards everything, except that the first publish's answer (``POST …/versions``)
    is read from the server and then dropped with the connection: the publish committed, its client heard nothing."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.listener = socket.create_server((LOCALHOST, 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://{LOCALHOST}:{self.port}"
        self.lost = 0
        self.publishes = 0
        self._lock = threading.Lock()

    def start(self) -> "LoseOnePublishAnswer":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((LOCALHOST, self.upstream_port))
            state = {"drop": False}
            threading.Thread(target=self._requests, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client, state), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, state: dict) -> None:
        with contextlib_closing(client, upstream):
            while data := _recv(client):
                if data.startswith(b"POST ") and b"/versions " in data.split(b"\r\n", 1)[0]:
                    with self._lock:
                        self.publishes += 1
                        if self.lost == 0:
                            self.lost, state["drop"] = 1, True
                upstream.sendall(data)

    def _answers(self, upstream: socket.socket, client: socket.socket, state: dict) -> None:
        with contextlib_closing(client, upstream):
            while data := _recv(upstream):
                if state["drop"]:
                    time.sleep(0.3)  # let the rest of the answer arrive; it goes nowhere
                    return
                client.sendall(data)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 16)
    except OSError:
        return b""


class contextlib_closing:
    def __init__(self, *sockets: socket.socket):
        self.sockets = sockets

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def _versions(server, name: str) -> list[int]:
    status, body = server.json("GET", f"/api/v1/models/{name}/versions", token=server.admin_token)
    assert status == 200, body
    return [item["version"] for item in body["items"]]


def test_a_publish_whose_answer_was_lost_is_retried_once_and_gets_the_committed_version(
        registry_server, tmp_path, reference_dir):
    proxy = LoseOnePublishAnswer(registry_server.port).start()
    try:
        client = registry.Registry(server_url=proxy.url, token=registry_server.admin_token,
                                   cache_dir=tmp_path / "client-cache")
        version = client.publish(reference_dir / "tf2_text_embedding", name="pub/retried", description="once")
    finally:
        proxy.stop()
    assert proxy.lost == 1 and proxy.publishes == 2  # the first answer was lost; the client retried by itself
    assert version.handle == "pub/retried/1"
    assert _versions(registry_server, "pub/retried") == [1]


def test_the_same_idempotency_key_publishes_once_and_never_for_other_content(database_url, start_registry_server,
                                                                             reference):
    server = start_registry_server(database_url=database_url if database_url.startswith("postgresql") else None)
    archive = reference.archive("tf2_text_embedding").read_bytes()
    first = server.publish("pub/keyed", archive, idempotency_key="retry-key-0001")
    again = server.publish("pub/keyed", archive, idempotency_key="retry-key-0001")
    assert first[0] == again[0] == 201 and first[1]["version"] == again[1]["version"] == 1
    other = server.publish("pub/keyed", reference.archive("tf2_image_feature_vector").read_bytes(),
                           idempotency_key="retry-key-0001")
    assert other[0] == 409 and other[1]["type"] == "CatalogError" and "idempotency key" in other[1]["message"]
    fresh = server.publish("pub/keyed", archive, idempotency_key="retry-key-0002")
    assert fresh[0] == 201 and fresh[1]["version"] == 2
    bad = server.publish("pub/keyed", archive, idempotency_key="no spaces allowed")
    assert bad[0] == 422 and bad[1]["type"] == "MetadataError"
    assert _versions(server, "pub/keyed") == [1, 2]


def _work_dirs(cache: Path) -> list[str]:
    tmp = cache / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []


def test_a_server_killed_mid_upload_leaves_nothing_after_a_restart_and_publishing_again_is_not_duplicated(
        registry_server, reference, tmp_path):
    server = registry_server
    cache = Path(server.env["MODEL_REGISTRY_CACHE_DIR"])
    archive = reference.archive("tf2_text_embedding").read_bytes()
    content_type, body = multipart_publish_body({"idempotency_key": "killed-upload-1"}, archive)
    uploads = []
    for _ in range(3):  # three uploads, each stopped half-way: the server holds three work directories
        sock = socket.create_connection((LOCALHOST, server.port))
        head = (f"POST /api/v1/models/pub/killed/versions HTTP/1.1\r\nHost: {LOCALHOST}\r\n"
                f"Authorization: Bearer {server.admin_token}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        sock.sendall(head + body[: len(body) // 2])
        uploads.append(sock)
    deadline = time.monotonic() + 30
    while len([n for n in _work_dirs(cache) if not n.endswith(".lock")]) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len([n for n in _work_dirs(cache) if not n.endswith(".lock")]) == 3, _work_dirs(cache)

    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()
    for sock in uploads:
        sock.close()
    assert _work_dirs(cache)  # what the killed process left
    server.start()
    assert _work_dirs(cache) == []  # reclaimed at start-up

    status, answer = server.publish("pub/killed", archive, idempotency_key="killed-upload-1")
    assert status == 201 and answer["version"] == 1
    status, answer = server.publish("pub/killed", archive, idempotency_key="killed-upload-1")  # a retry
    assert status == 201 and answer["version"] == 1
    assert _versions(server, "pub/killed") == [1]
    assert _work_dirs(cache) == []


@pytest.fixture
def own_postgres():
    """A PostgreSQL cluster of this test's own, to stop and start again without disturbing other tests."""
    try:
        server = PostgresServer().start()
    except ServiceUnavailable as exc:
        pytest.fail(f"PostgreSQL is needed for this test: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.mark.postgres
def test_a_catalog_outage_reaches_client_mode_as_catalog_unavailable_and_recovers(
        own_postgres, start_registry_server, tmp_path, reference_dir):
    from registry.catalog import schema

    database = own_postgres.url(own_postgres.create_database())
    schema.upgrade(database)
    server = start_registry_server(database_url=database)
    client = registry.Registry(server_url=server.url, token=server.admin_token, cache_dir=tmp_path / "client-cache")
    client.publish(reference_dir / "tf2_text_embedding", name="pub/outage")

    own_postgres.halt()
    try:
        for read in (lambda: client.get_version("pub/outage/1"), lambda: client.list_models(),
                     lambda: registry.Registry(server_url=server.url, token=server.admin_token,
                                               cache_dir=tmp_path / "fresh-cache").resolve("pub/outage/1"),
                     lambda: client.publish(reference_dir / "tf2_image_feature_vector", name="pub/outage")):
            with pytest.raises(CatalogUnavailable) as info:
                read()
            assert type(info.value) is CatalogUnavailable, info.value  # the class the server sent, not ServerError
            assert str(tmp_path) not in str(info.value)
    finally:
        own_postgres.resume()

    assert client.get_version("pub/outage/1").version == 1
    version = client.publish(reference_dir / "tf2_image_feature_vector", name="pub/outage")
    assert version.version == 2 and [v.version for v in client.list_versions("pub/outage")] == [1, 2]



def test_the_next_upload_reclaims_what_a_killed_server_left_in_a_shared_cache(start_registry_server, reference,
                                                                               tmp_path):
    """Two servers over one catalog, storage and cache folder: one dies mid-upload, the other's next upload cleans."""
    cache = tmp_path / "shared-cache"
    first = start_registry_server(database_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                                  storage_url=str(tmp_path / "artifacts"),
                                  extra_env={"MODEL_REGISTRY_CACHE_DIR": str(cache)})
    second = start_registry_server(database_url=f"sqlite:///{tmp_path / 'catalog.db'}",
                                   storage_url=str(tmp_path / "artifacts"), admin_token=False,
                                   extra_env={"MODEL_REGISTRY_CACHE_DIR": str(cache)})
    second.admin_token = first.admin_token
    archive = reference.archive("tf2_text_embedding").read_bytes()
    content_type, body = multipart_publish_body({}, archive)
    sock = socket.create_connection((LOCALHOST, first.port))
    sock.sendall((f"POST /api/v1/models/pub/shared/versions HTTP/1.1\r\nHost: {LOCALHOST}\r\n"
                  f"Authorization: Bearer {first.admin_token}\r\nContent-Type: {content_type}\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body[: len(body) // 2])
    deadline = time.monotonic() + 30
    while not _work_dirs(cache) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _work_dirs(cache)
    assert left
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait()
    sock.close()
    assert _work_dirs(cache) == left  # nobody has cleaned yet

    status, answer = second.publish("pub/shared", archive)
    assert status == 201 and answer["version"] == 1
    assert _work_dirs(cache) == []


def test_a_local_publish_with_an_idempotency_key_is_recorded_once(tmp_path, reference_dir):
    reg = registry.Registry(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "art"),
                            cache_dir=tmp_path / "cache")
    first = reg.publish(reference_dir / "tf2_text_embedding", name="pub/local", idempotency_key="nightly-2026-12-05")
    again = reg.publish(reference_dir / "tf2_text_embedding", name="pub/local", idempotency_key="nightly-2026-12-05")
    plain = reg.publish(reference_dir / "tf2_text_embedding", name="pub/local")  # no key: a new version, as always
    assert (first.version, again.version, plain.version) == (1, 1, 2)
    assert [v.version for v in reg.list_versions("pub/local")] == [1, 2]
    with pytest.raises(registry.errors.MetadataError, match="idempotency key"):
        reg.publish(reference_dir / "tf2_text_embedding", name="pub/local", idempotency_key="x" * 200)
