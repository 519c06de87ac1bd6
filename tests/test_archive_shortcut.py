"""Downloads answered without the router, and the catalog read they rest on.

``registry.server.hub_urls.ArchiveShortcut`` answers an anonymous GET of a model URL the router has
already sent to ``model_version_url`` with that route's own code; everything the route would decide
differently (a token, a read-token server, another query, a HEAD, a version deleted since) must still
reach the route. ``registry.catalog.sqlite_reader`` keeps its read-only connection open per thread, and
must still see every later write and a file replaced under the same name.
"""

from __future__ import annotations

import sqlite3
import warnings

import pytest

from registry.handles import COMPRESSED_QUERY, catalog_handle
from registry.server import hub_urls
from tests.conftest import REFERENCE_DIR
from tests.server_support import cli, create_token, server_environ

URL = f"/acme/model/1?{COMPRESSED_QUERY}"
MODEL = REFERENCE_DIR / "tf2_text_embedding"


@pytest.fixture
def served(registry_env, monkeypatch):
    """``(app, client, env, route_calls)``: the application in process over a catalog holding ``acme/model``
    versions 1 and 2; ``route_calls`` lists each time the router handed ``model_version_url`` a request."""
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

    import registry
    from registry.server.app import create_app

    env = server_environ(database_url=registry_env.database_url, storage_url=registry_env.storage_url,
                         cache_dir=registry_env.cache_dir)
    cli("db", "upgrade", env=env)
    for _ in range(2):
        registry.publish(MODEL, name="acme/model")
    route_calls: list[tuple] = []
    learn = hub_urls.ArchiveShortcut.learn.__func__

    def counting_learn(cls, request, parameters, answer):
        route_calls.append((request.method, parameters))
        learn(cls, request, parameters, answer)

    monkeypatch.setattr(hub_urls.ArchiveShortcut, "learn", classmethod(counting_learn))
    app = create_app()
    with TestClient(app) as client:
        yield app, client, env, route_calls


def _answer(response) -> tuple:
    headers = {k: v for k, v in response.headers.items() if k not in ("date",)}
    return response.status_code, headers, response.content


def test_a_learnt_url_is_answered_as_the_route_answers_it_and_counted(served):
    app, client, _, route_calls = served
    first = client.get(URL)
    assert first.status_code == 200 and first.headers["x-model-handle"] == "acme/model/1"
    assert route_calls == [("GET", ("acme", "model", "1"))]
    again = [client.get(URL) for _ in range(3)]
    assert route_calls == [("GET", ("acme", "model", "1"))]  # the router was not asked again
    assert all(_answer(response) == _answer(first) for response in again)  # same status, headers, bytes
    assert app.state.downloads.pending() == 4  # each download counted once, whichever way it went

    # Another version is another path: learnt on its own first request.
    assert client.get(f"/acme/model/2?{COMPRESSED_QUERY}").headers["x-model-handle"] == "acme/model/2"
    assert route_calls[-1] == ("GET", ("acme", "model", "2"))


def test_what_the_route_would_decide_otherwise_still_reaches_it(served):
    app, client, env, route_calls = served
    first = client.get(URL)
    assert first.status_code == 200, first.text
    calls = len(route_calls)

    # A token, even on an open server, is checked by the route: a bad one is refused (by its read check, before
    # the route's code runs: the shortcut would have sent the archive).
    assert client.get(URL, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    token = create_token(env, "reader", "read")
    assert client.get(URL, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # Another query, a HEAD: the route.
    assert client.get(f"{URL}&extra=1").status_code == 200
    head = client.head(URL)
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"]
    assert len(route_calls) == calls + 3

    # A version deleted since it was learnt: the route's 404, not the archive.
    import registry

    registry.delete_version("acme/model/1")
    gone = client.get(URL)
    assert gone.status_code == 404 and "acme/model" in gone.text and gone.headers["content-type"].startswith(
        "application/json")
    assert len(route_calls) == calls + 3  # a 404 is nothing to learn
    assert gone.json() == client.get(f"/acme/model/1?{COMPRESSED_QUERY}&again=1").json()  # the route's very answer


def test_a_server_that_requires_read_tokens_never_answers_from_what_it_learnt(monkeypatch, served):
    """The same application with ``MODEL_REGISTRY_REQUIRE_READ_TOKEN``: the path is learnt from a reader's
    download, and an anonymous request for it is refused by the route."""
    _, _, env, _ = served
    from fastapi.testclient import TestClient

    from registry.server.app import create_app

    monkeypatch.setenv("MODEL_REGISTRY_REQUIRE_READ_TOKEN", "1")
    token = create_token(env, "reader", "read")
    with TestClient(create_app()) as client:
        assert client.get(URL, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert client.get(URL).status_code == 401


def test_the_kept_sqlite_connection_sees_later_writes_and_a_replaced_file(registry_env, served):
    """The load path's reader keeps one read-only connection per thread and file: it must see a version
    published after it opened, and a catalog file swapped for another under the same name."""
    import registry
    from registry.catalog import sqlite_reader

    path = registry_env.root / "catalog.db"
    assert sqlite_reader.locate(path, catalog_handle("acme/model/2")).version == 2
    assert sqlite_reader.locate(path, catalog_handle("acme/model/3")) is None
    registry.publish(MODEL, name="acme/model")
    assert sqlite_reader.locate(path, catalog_handle("acme/model/3")).version == 3
    known, revision = sqlite_reader.revision(path, "acme", "model")
    assert known and revision and sqlite_reader.revision(path, "acme", "nothing") == (True, None)

    # Another catalog file moved into place: the kept connection (to the old file) is not used.
    other = registry_env.root / "other.db"
    with sqlite3.connect(path) as source, sqlite3.connect(other) as copy:
        source.backup(copy)  # the whole catalog, what its write-ahead log holds included
    registry.delete_version("acme/model/3")
    assert sqlite_reader.locate(path, catalog_handle("acme/model/3")) is None
    (registry_env.root / "catalog.db-wal").unlink(missing_ok=True)
    (registry_env.root / "catalog.db-shm").unlink(missing_ok=True)
    other.replace(path)
    assert sqlite_reader.locate(path, catalog_handle("acme/model/3")).version == 3


VERSION_JSON = "/api/v1/models/acme/model/versions/1"


def test_the_front_door_logs_what_the_shortcuts_answer_and_the_route_answers_what_they_fail_on(
        served, monkeypatch, caplog):
    """The access log and both shortcuts sit in front of FastAPI (``registry.server.front_door``): each answer
    is logged once, whoever gave it; a shortcut that fails unexpectedly hands the request to the route, whose
    answer is the same."""
    from registry.server import http_cache

    app, client, _, route_calls = served
    archive = client.get(URL)
    etag = client.get(VERSION_JSON).headers["etag"]
    caplog.set_level("INFO", logger="registry.server.access")
    caplog.clear()
    assert _answer(client.get(URL)) == _answer(archive)  # the archive shortcut
    assert client.get(VERSION_JSON, headers={"If-None-Match": etag}).status_code == 304  # the 304 shortcut
    logged = [record.getMessage() for record in caplog.records if record.name == "registry.server.access"]
    assert len(logged) == 2, logged
    assert f'"GET {URL} HTTP/1.1" 200 {len(archive.content)} ' in logged[0]
    assert f'"GET {VERSION_JSON} HTTP/1.1" 304 0 ' in logged[1]

    calls = len(route_calls)

    async def broken(*args, **kwargs):
        raise RuntimeError("a fault no request can cause")

    monkeypatch.setattr(hub_urls.ArchiveShortcut, "_answer", staticmethod(broken))
    monkeypatch.setattr(http_cache.NotModifiedShortcut, "_not_modified", broken)
    assert _answer(client.get(URL)) == _answer(archive)
    assert len(route_calls) == calls + 1  # the router, this time
    revalidated = client.get(VERSION_JSON, headers={"If-None-Match": etag})
    assert revalidated.status_code == 304 and revalidated.headers["etag"] == etag  # the route's own 304
    assert app.state.downloads.pending() == 3


def test_a_version_etag_is_the_base_url_s_and_the_304_shortcut_keeps_them_apart(served):
    """The version JSON's links are made of the URL the client used: its ETag differs per host, and the
    shortcut's kept validators (keyed by what the ETag is made of) never answer one host's ETag for another."""
    import registry

    _, client, _, _ = served
    tags = {host: client.get(VERSION_JSON, headers={"Host": host}).headers["etag"]
            for host in ("a.example", "b.example")}
    assert tags["a.example"] != tags["b.example"]
    for _ in range(2):
        assert client.get(VERSION_JSON, headers={"Host": "a.example",
                                                 "If-None-Match": tags["a.example"]}).status_code == 304
        other = client.get(VERSION_JSON, headers={"Host": "b.example", "If-None-Match": tags["a.example"]})
        assert other.status_code == 200 and other.headers["etag"] == tags["b.example"]
        assert "http://b.example/" in other.text
    # Any change of the model: the kept validators no longer match, and the old ETag gets the new record.
    registry.set_alias("acme/model", "prod", 1)
    changed = client.get(VERSION_JSON, headers={"Host": "a.example", "If-None-Match": tags["a.example"]})
    assert changed.status_code == 200 and changed.headers["etag"] != tags["a.example"] and '"prod"' in changed.text
