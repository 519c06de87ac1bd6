"""Cacheable version reads: the record cache, the model revision, ETags, 304s and Cache-Control.

The catalog keeps version records in the process (``registry.catalog.record_cache``) and
trusts one only while its model's revision (the newest audit entry about the model) is the
one it was read at; the server's ETags are made of that revision, so a ``304`` needs no
record. Checked on SQLite and PostgreSQL, through real ``model-registry serve`` processes,
and across two servers over one PostgreSQL: a version deleted through one is gone at once
from the other, whose cache held it.
"""

from __future__ import annotations

import os

import pytest

from registry.catalog import Catalog
from registry.catalog.models import VersionCreate
from registry.errors import VersionNotFound

VERSION_PATH = "/api/v1/models/vision/big/versions/{}"


def publish(catalog: Catalog, name: str = "vision/big", parent: str | None = None):
    publisher, model = name.split("/")
    digest = os.urandom(32).hex()
    return catalog.create_version(VersionCreate(
        publisher=publisher, name=model, format="tf2_saved_model", artifact_uri=f"memory://a/{digest}.tar.gz",
        sha256=digest, size=1234, tag_sets=[[]], parent=parent, description="a model"))


@pytest.fixture
def catalog(database_url):
    with Catalog(database_url) as catalog:
        yield catalog


# -- the catalog -------------------------------------------------------------------------------------------------

def test_every_change_of_a_model_raises_its_revision_and_nothing_else_does(catalog):
    assert catalog.revision(publisher="vision", name="big") is None  # no such model
    publish(catalog)
    revisions = [catalog.revision(publisher="vision", name="big")]
    for change in (lambda: publish(catalog),
                   lambda: catalog.set_alias(publisher="vision", name="big", alias="prod", version=1),
                   lambda: catalog.set_alias(publisher="vision", name="big", alias="prod", version=2),
                   lambda: catalog.remove_alias(publisher="vision", name="big", alias="prod"),
                   lambda: catalog.delete_version(publisher="vision", name="big", version=2)):
        change()
        revisions.append(catalog.revision(publisher="vision", name="big"))
    assert revisions == sorted(set(revisions)), revisions  # each change raised it
    # A write that changes nothing, a read, and a change of another model leave it alone.
    catalog.delete_version(publisher="vision", name="big", version=2)
    catalog.get_version("vision/big/1")
    publish(catalog, "vision/other")
    assert catalog.revision(publisher="vision", name="big") == revisions[-1]


def test_records_come_from_the_cache_until_their_model_changes(catalog):
    for _ in range(3):
        publish(catalog)
    catalog.set_alias(publisher="vision", name="big", alias="prod", version=2)
    first = {h: catalog.get_version(h) for h in ("vision/big/2", "vision/big@prod", "vision/big")}
    assert len(catalog.records) == 3
    again = {h: catalog.get_version(h) for h in first}
    assert again == first and all(again[h] is not first[h] for h in first)  # each read gets its own copy
    assert first["vision/big/2"].aliases == ["prod"] and first["vision/big"].version == 3
    catalog.set_alias(publisher="vision", name="big", alias="prod", version=3)
    assert catalog.get_version("vision/big/2").aliases == []
    assert catalog.get_version("vision/big@prod").version == 3
    assert catalog.get_version("vision/big").aliases == ["prod"]


def test_a_card_edit_and_a_legacy_handle_are_changes_the_cached_record_follows(catalog):
    """The fields editable after publish (the card and what its front matter fills, legacy handles) are model
    changes like any other: the revision rises and the cached record is read again."""
    from registry.catalog.cards import CardStore

    publish(catalog)
    assert catalog.get_version("vision/big/1").card is None  # cached now
    revision = catalog.revision(publisher="vision", name="big")
    CardStore(catalog).set_version_card("vision/big/1", "---\ntags: [vision]\n---\n# Big\n")
    record = catalog.get_version("vision/big/1")
    assert record.card is not None and record.card.endswith("# Big\n") and record.tags == ["vision"]
    assert catalog.revision(publisher="vision", name="big") > revision
    catalog.add_legacy_handles("vision/big/1", ["https://tfhub.dev/google/big/1"])
    assert catalog.get_version("vision/big/1").legacy_handles == ["https://tfhub.dev/google/big/1"]


def test_a_version_deleted_through_another_catalog_is_gone_at_once(database_url):
    """Two catalogs over one database stand for two server processes: each has its own record cache."""
    with Catalog(database_url) as reader, Catalog(database_url) as writer:
        publish(writer)
        publish(writer)
        assert reader.get_version("vision/big/2").version == 2
        assert reader.get_version("vision/big").version == 2
        assert len(reader.records) == 2
        writer.delete_version(publisher="vision", name="big", version=2)
        with pytest.raises(VersionNotFound, match="deleted"):
            reader.get_version("vision/big/2")
        assert reader.get_version("vision/big").version == 1
        assert reader.get_version("vision/big/2", include_deleted=True).deleted


def test_the_record_cache_is_bounded_and_keeps_the_most_recently_used(tmp_path):
    with Catalog(f"sqlite:///{tmp_path / 'c.db'}", record_cache_size=3) as catalog:
        for _ in range(5):
            publish(catalog)
        for number in (1, 2, 3):
            catalog.get_version(f"vision/big/{number}")
        catalog.get_version("vision/big/1")  # used again: now the most recent
        catalog.get_version("vision/big/4")  # evicts 2, the least recently used
        assert len(catalog.records) == 3
        assert {key[2] for key in catalog.records._entries} == {1, 3, 4}
        for number in range(1, 6):
            catalog.get_version(f"vision/big/{number}")
        assert len(catalog.records) == 3
    with Catalog(f"sqlite:///{tmp_path / 'c.db'}", record_cache_size=0) as uncached:
        assert uncached.get_version("vision/big/5").version == 5
        assert len(uncached.records) == 0


# -- the server --------------------------------------------------------------------------------------------------

def _filled(server, versions: int = 3) -> Catalog:
    """The server's catalog opened in this process (another writer, as a second server would be), filled."""
    catalog = Catalog(server.env["MODEL_REGISTRY_DATABASE_URL"])
    for number in range(1, versions + 1):
        publish(catalog, parent="vision/big/1" if number == 3 else None)
    catalog.set_alias(publisher="vision", name="big", alias="prod", version=2)
    return catalog


def _get(server, path: str, etag: str | None = None, **headers):
    if etag is not None:
        headers["If-None-Match"] = etag
    status, response_headers, body = server.request("GET", path, headers=headers)
    return status, {k.lower(): v for k, v in response_headers.items()}, body


def test_version_json_has_an_etag_and_cache_control_per_kind_of_url_and_304s(registry_server):
    server = registry_server
    catalog = _filled(server)
    try:
        tags = {}
        for ref, control in (("2", "public, max-age=60"), ("@prod", "public, no-cache"),
                             ("latest", "public, no-cache")):
            status, headers, body = _get(server, VERSION_PATH.format(ref))
            assert status == 200 and headers["cache-control"] == control, (ref, headers)
            etag = tags[ref] = headers["etag"]
            assert etag.startswith('"') and not etag.startswith("W/")  # strong
            status, again, empty = _get(server, VERSION_PATH.format(ref), etag)
            assert (status, empty) == (304, b"") and again["etag"] == etag and again["cache-control"] == control
            assert _get(server, VERSION_PATH.format(ref), f'"other", W/{etag}')[0] == 304  # weak comparison
            assert _get(server, VERSION_PATH.format(ref), '"other"')[0] == 200
            # A credential is the route's to check, even where reads are open: a bad one is refused, not a 304.
            assert _get(server, VERSION_PATH.format(ref), etag, Authorization="Bearer not-a-token")[0] == 401
            assert _get(server, VERSION_PATH.format(ref), etag, Authorization=f"Bearer {server.admin_token}")[0] == 304
        assert len(set(tags.values())) == 3
        assert _get(server, VERSION_PATH.format("2") + "?include_deleted=true", tags["2"])[0] == 200  # another URL
        assert _get(server, VERSION_PATH.format("2") + "?at=2100-01-01T00:00:00", tags["2"])[0] == 200
        # A moment in the past is not validated: no ETag, no Cache-Control.
        status, headers, _ = _get(server, VERSION_PATH.format("2") + "?at=2100-01-01T00:00:00")
        assert status == 200 and "etag" not in headers

        # An alias moved through another process: the pinned version's record (its aliases) and the alias's
        # answer changed, and so did their ETags.
        catalog.set_alias(publisher="vision", name="big", alias="prod", version=3)
        status, headers, body = _get(server, VERSION_PATH.format("2"), tags["2"])
        assert status == 200 and b'"aliases":[]' in body and headers["etag"] != tags["2"]
        status, headers, body = _get(server, VERSION_PATH.format("@prod"), tags["@prod"])
        assert status == 200 and b'"version":3' in body
        assert _get(server, VERSION_PATH.format("@prod"), headers["etag"])[0] == 304

        # A card edited through the API: the pinned version's JSON (its card) changed, and so did its ETag.
        status, headers, _ = _get(server, VERSION_PATH.format("2"))
        assert server.json("PUT", VERSION_PATH.format("2") + "/card", json_body={"card": "# Two\n"},
                           token=server.admin_token)[0] == 200
        status, edited, body = _get(server, VERSION_PATH.format("2"), headers["etag"])
        assert status == 200 and b'"card":"# Two\\n"' in body and edited["etag"] != headers["etag"]

        # Deleted through the API: the newest is version 2 again, and the old ETag of version 3 no longer holds.
        status, headers, _ = _get(server, VERSION_PATH.format("3"))
        assert server.json("DELETE", VERSION_PATH.format("3"), token=server.admin_token)[0] == 200
        assert _get(server, VERSION_PATH.format("3"), headers["etag"])[0] == 404
        status, _, body = _get(server, VERSION_PATH.format("latest"), tags["latest"])
        assert status == 200 and b'"version":2' in body
    finally:
        catalog.close()


def test_model_pages_have_validators_too(registry_server):
    server = registry_server
    catalog = _filled(server)
    try:
        for path, control in (("/vision/big/2", "public, max-age=60"), ("/vision/big@prod", "public, no-cache"),
                              ("/vision/big", "public, no-cache")):
            status, headers, body = _get(server, path, accept="text/html")
            assert status == 200 and b"<html" in body and headers["cache-control"] == control, (path, headers)
            assert "Cookie" in headers["vary"]
            status, again, empty = _get(server, path, headers["etag"], accept="text/html")
            assert (status, empty) == (304, b"") and again["etag"] == headers["etag"]
        status, headers, _ = _get(server, "/vision/big/2", accept="text/html")
        catalog.set_alias(publisher="vision", name="big", alias="staging", version=2)
        assert _get(server, "/vision/big/2", headers["etag"], accept="text/html")[0] == 200
    finally:
        catalog.close()


def test_where_reads_need_a_token_answers_are_private_and_a_304_still_needs_the_token(start_registry_server):
    server = start_registry_server(extra_env={"MODEL_REGISTRY_REQUIRE_READ_TOKEN": "1"})
    catalog = _filled(server)
    try:
        auth = {"Authorization": f"Bearer {server.admin_token}"}
        status, headers, _ = _get(server, VERSION_PATH.format("2"), **auth)
        assert status == 200 and headers["cache-control"] == "private, max-age=60"
        assert _get(server, VERSION_PATH.format("@prod"), **auth)[1]["cache-control"] == "private, no-cache"
        assert _get(server, VERSION_PATH.format("2"), headers["etag"], **auth)[0] == 304
        assert _get(server, VERSION_PATH.format("2"), headers["etag"])[0] == 401
    finally:
        catalog.close()


@pytest.mark.postgres
def test_two_servers_over_one_postgresql_a_deleted_version_is_gone_at_once(start_registry_server, postgres_url,
                                                                          tmp_path):
    storage = str(tmp_path / "artifacts")
    first = start_registry_server(database_url=postgres_url, storage_url=storage)
    second = start_registry_server(database_url=postgres_url, storage_url=storage, admin_token=False)
    catalog = _filled(first)
    try:
        for _ in range(2):  # the second read comes from the second server's record cache
            status, headers, _ = _get(second, VERSION_PATH.format("3"))
            assert status == 200
        etag = headers["etag"]
        assert _get(second, VERSION_PATH.format("3"), etag)[0] == 304
        assert first.json("DELETE", VERSION_PATH.format("3"), token=first.admin_token)[0] == 200
        status, _, body = _get(second, VERSION_PATH.format("3"))
        assert status == 404 and b"deleted" in body
        assert _get(second, VERSION_PATH.format("3"), etag)[0] == 404
        status, _, body = _get(second, VERSION_PATH.format("latest"))
        assert status == 200 and b'"version":2' in body
        for server in (first, second):
            assert "Traceback" not in server.log()
    finally:
        catalog.close()
