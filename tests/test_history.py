"""The audit log and alias history, on a real SQLite file and a real PostgreSQL database.

Every write leaves exactly one audit entry, in its own transaction (a refused
write leaves none, a write that changes nothing leaves none); the log cannot be
edited, even with SQL; an alias's history and ``at=`` give the right version at
five moments; ``resolve`` and ``load`` with ``at=`` fetch what an alias named then.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

import registry
from registry.actor import acting_as, local_actor
from registry.catalog import Catalog
from registry.catalog.models import VersionCreate
from registry.errors import CatalogError, RegistryError, VersionNotFound
from tests.conftest import REFERENCE_DIR


@pytest.fixture
def catalog(database_url):
    with Catalog(database_url) as catalog:
        yield catalog


def publish(catalog: Catalog, name: str = "text/embed", n: int = 0):
    publisher, model = name.split("/")
    return catalog.create_version(VersionCreate(
        publisher=publisher, name=model, format="tf1_hub", artifact_uri=f"memory://artifacts/{name}/{n}.tar.gz",
        sha256=f"{n:064x}", size=1234, tag_sets=[[]]))


def actions(catalog: Catalog, **filters) -> list[tuple[str, str]]:
    return [(e.action, e.subject) for e in reversed(catalog.audit.entries(limit=1000, **filters))]


def moment() -> datetime:
    """Now, with room on both sides, so entries written just before and after fall clearly on either side."""
    time.sleep(0.05)
    now = datetime.now(timezone.utc)
    time.sleep(0.05)
    return now


def test_every_write_has_exactly_one_entry_with_actor_before_and_after(catalog):
    from registry.catalog.tokens import TokenStore

    v1 = publish(catalog, n=1)
    publish(catalog, n=2)
    catalog.set_alias(publisher="text", name="embed", alias="prod", version=1)
    catalog.set_alias(publisher="text", name="embed", alias="prod", version=1)  # no change: no entry
    with acting_as("ci-bot"):
        catalog.set_alias(publisher="text", name="embed", alias="prod", version=2)
    catalog.remove_alias(publisher="text", name="embed", alias="prod")
    catalog.delete_version(publisher="text", name="embed", version=1)
    catalog.delete_version(publisher="text", name="embed", version=1)  # already deleted: no entry
    tokens = TokenStore(catalog)
    secret, _ = tokens.create(name="ci", scope="publish", publisher="text")
    tokens.revoke("ci")

    assert actions(catalog) == [
        ("version.published", "text/embed/1"), ("version.published", "text/embed/2"),
        ("alias.set", "text/embed@prod"), ("alias.moved", "text/embed@prod"), ("alias.removed", "text/embed@prod"),
        ("version.deleted", "text/embed/1"), ("token.created", "token:ci"), ("token.revoked", "token:ci")]
    entries = {(e.action, e.subject): e for e in catalog.audit.entries()}
    moved = entries[("alias.moved", "text/embed@prod")]
    assert moved.actor == "ci-bot"
    assert (moved.before["handle"], moved.after["handle"]) == ("text/embed/1", "text/embed/2")
    assert moved.after["sha256"] == f"{2:064x}" and moved.after["url"] == "memory://artifacts/text/embed/2.tar.gz"
    published = entries[("version.published", "text/embed/1")]
    assert published.actor == local_actor() and "@" in published.actor
    assert published.before is None and published.after["sha256"] == v1.sha256
    deleted = entries[("version.deleted", "text/embed/1")]
    assert (deleted.before["deleted"], deleted.after["deleted"]) == (False, True)
    assert entries[("alias.removed", "text/embed@prod")].after is None
    assert entries[("token.created", "token:ci")].after == {"name": "ci", "scope": "publish", "publisher": "text",
                                                           "revoked": False}
    everything = str([e.model_dump() for e in catalog.audit.entries()])
    assert secret not in everything and "token_hash" not in everything


def test_a_refused_write_leaves_no_entry(catalog):
    publish(catalog, n=1)
    before = actions(catalog)
    with pytest.raises(VersionNotFound):
        catalog.set_alias(publisher="text", name="embed", alias="prod", version=7)
    with pytest.raises(CatalogError):
        catalog.set_alias(publisher="text", name="embed", alias="latest", version=1)
    with pytest.raises(VersionNotFound):
        catalog.remove_alias(publisher="text", name="embed", alias="nope")
    with pytest.raises(RegistryError):
        catalog.create_version(VersionCreate(publisher="text", name="embed", format="tf1_hub", artifact_uri="m://x",
                                             sha256="0" * 64, size=1, tag_sets=[[]], parent="text/embed/9"))
    assert actions(catalog) == before
    assert len(catalog.list_versions(publisher="text", name="embed")) == 1


def test_an_entry_rolls_back_with_its_change(catalog):
    """The entry is written in the change's transaction: a failure after it undoes both."""
    publish(catalog, n=1)
    with pytest.raises(RuntimeError), catalog._write() as session:
        from registry.catalog.changes import record_change

        record_change(session, "alias.set", "text/embed@ghost", publisher="text", model="embed")
        raise RuntimeError("the change fails after its entry was added")
    assert ("alias.set", "text/embed@ghost") not in actions(catalog)


def test_the_log_is_append_only_even_to_sql(catalog):
    publish(catalog, n=1)
    for statement in ("UPDATE audit_entry SET actor = 'someone else'", "DELETE FROM audit_entry"):
        with pytest.raises(Exception, match="append-only"), catalog.engine.begin() as connection:
            connection.execute(text(statement))
    assert actions(catalog) == [("version.published", "text/embed/1")]
    assert not any(hasattr(catalog.audit, name) for name in ("delete", "update", "edit", "remove", "clear"))


def test_filters_and_keyset_pages(catalog):
    publish(catalog, "text/embed", 1)
    start = moment()
    publish(catalog, "vision/fv", 2)
    with acting_as("mover"):
        catalog.set_alias(publisher="vision", name="fv", alias="prod", version=1)
    end = moment()
    publish(catalog, "text/embed", 3)
    assert actions(catalog, model="vision/fv") == [("version.published", "vision/fv/1"),
                                                   ("alias.set", "vision/fv@prod")]
    assert actions(catalog, model="text") == [("version.published", "text/embed/1"),
                                              ("version.published", "text/embed/2")]
    assert actions(catalog, actor="mover") == [("alias.set", "vision/fv@prod")]
    assert actions(catalog, action="alias") == [("alias.set", "vision/fv@prod")]
    assert actions(catalog, action="version.published", since=start, until=end) == [
        ("version.published", "vision/fv/1")]
    pages, after = [], None
    while True:
        page = catalog.audit.entries(limit=2, after=after)
        if not page:
            break
        pages.append([e.id for e in page])
        after = page[-1].id
    assert [len(p) for p in pages] == [2, 2]
    assert sum(pages, []) == sorted(sum(pages, []), reverse=True)
    with pytest.raises(CatalogError, match="unknown audit action"):
        catalog.audit.entries(action="alias.renamed")
    with pytest.raises(CatalogError, match="1 to 5000"):
        catalog.audit.entries(limit=0)


def test_alias_history_and_at_give_the_right_version_at_five_moments(catalog):
    for n in range(1, 4):
        publish(catalog, n=n)
    before_alias = moment()
    catalog.set_alias(publisher="text", name="embed", alias="prod", version=1)
    on_1 = moment()
    with acting_as("release-bot"):
        catalog.set_alias(publisher="text", name="embed", alias="prod", version=2)
    on_2 = moment()
    catalog.remove_alias(publisher="text", name="embed", alias="prod")
    removed = moment()
    catalog.set_alias(publisher="text", name="embed", alias="prod", version=3)
    on_3 = moment()

    history = catalog.alias_history("text/embed@prod")
    assert [(i.version, i.actor, i.action, i.ended_by) for i in history] == [
        (1, local_actor(), "alias.set", "alias.moved"), (2, "release-bot", "alias.moved", "alias.removed"),
        (3, local_actor(), "alias.set", None)]
    assert history[0].until == history[1].since and history[1].until < history[2].since
    assert history[0].since < on_1 < history[0].until and history[2].until is None

    expected = {on_1: 1, on_2: 2, on_3: 3}
    for at, version in expected.items():
        assert catalog.get_version("text/embed@prod", at=at).version == version
    with pytest.raises(VersionNotFound, match="did not exist yet"):
        catalog.get_version("text/embed@prod", at=before_alias)
    with pytest.raises(VersionNotFound, match="had been removed"):
        catalog.get_version("text/embed@prod", at=removed)
    # A naive datetime is local time, as Python's own conversions read it.
    assert catalog.get_version("text/embed@prod", at=on_1.astimezone().replace(tzinfo=None)).version == 1
    # The newest version and a number, as of then.
    assert catalog.get_version("text/embed", at=on_1).version == 3
    catalog.delete_version(publisher="text", name="embed", version=3)
    with pytest.raises(VersionNotFound, match="was version 3, which was deleted"):
        catalog.get_version("text/embed", at=on_3)
    assert catalog.get_version("text/embed", at=on_3, include_deleted=True).version == 3
    assert catalog.get_version("text/embed", at=datetime.now(timezone.utc)).version == 2
    with pytest.raises(VersionNotFound, match="published on"):
        catalog.get_version("text/embed/1", at=before_alias - timedelta(hours=1))
    with pytest.raises(VersionNotFound, match="never had an alias"):
        catalog.alias_history("text/embed@staging")
    with pytest.raises(CatalogError, match="of an alias"):
        catalog.alias_history("text/embed/1")


def test_resolve_and_load_at_a_moment_fetch_what_the_alias_named_then(registry_env):
    reg = registry.Registry()
    first = reg.publish(REFERENCE_DIR / "tf2_text_embedding.tar.gz", name="text/embed")
    second = reg.publish(REFERENCE_DIR / "tf2_image_feature_vector.tar.gz", name="text/embed")
    reg.set_alias("text/embed", "prod", first.version)
    then = moment()
    reg.set_alias("text/embed", "prod", second.version)
    assert reg.get_version("text/embed@prod", at=then).sha256 == first.sha256
    old, new = reg.resolve("text/embed@prod", at=then), reg.resolve("text/embed@prod")
    assert old != new
    assert reg.resolve(first.handle) == old
    loaded = reg.load("text/embed@prod", at=then)
    assert loaded is not None and hasattr(loaded, "signatures")
    assert [i.version for i in reg.alias_history("text/embed@prod")] == [1, 2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_at_0005(request, tmp_path) -> str:
    """A catalog migrated to 0005 (before the audit log), with a model and an alias in it."""
    from registry.catalog import schema
    from registry.catalog.engine import make_engine

    url = (f"sqlite:///{tmp_path / 'catalog.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    schema.upgrade(url, "0005")
    engine = make_engine(url)
    with engine.begin() as db:
        db.execute(text("INSERT INTO registered_model (publisher, name, description, created_at, last_version) "
                        "VALUES ('text', 'embed', '', '2026-01-01 00:00:00', 2)"))
        for n in (1, 2):
            db.execute(text(
                "INSERT INTO model_version (model_id, version, format, artifact_uri, sha256, size, description, "
                "tag_sets, details, created_at) VALUES ((SELECT id FROM registered_model), :n, 'tf1_hub', 'm://x', "
                ":sha, 1, '', '[[]]', '{}', '2026-01-01 00:00:00')"), {"n": n, "sha": f"{n:064x}"})
        db.execute(text("INSERT INTO alias (model_id, name, version_id, updated_at) VALUES ((SELECT id FROM "
                        "registered_model), 'prod', (SELECT id FROM model_version WHERE version = 2), "
                        "'2026-02-01 12:00:00')"))
    engine.dispose()
    return url


def test_upgrading_starts_each_existing_alias_history_where_the_catalog_remembers(catalog_at_0005):
    from registry.catalog import schema

    schema.upgrade(catalog_at_0005)
    with Catalog(catalog_at_0005) as catalog:
        [interval] = catalog.alias_history("text/embed@prod")
        assert (interval.version, interval.actor, interval.until) == (2, "(before the audit log)", None)
        assert interval.since == datetime(2026, 2, 1, 12, tzinfo=timezone.utc)
        assert catalog.get_version("text/embed@prod", at=datetime(2026, 3, 1, tzinfo=timezone.utc)).version == 2
        with pytest.raises(VersionNotFound, match="did not exist yet"):
            catalog.get_version("text/embed@prod", at=datetime(2026, 1, 15, tzinfo=timezone.utc))
        catalog.set_alias(publisher="text", name="embed", alias="prod", version=1)
        assert [i.version for i in catalog.alias_history("text/embed@prod")] == [2, 1]
