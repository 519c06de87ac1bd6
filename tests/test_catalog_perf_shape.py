"""The catalog's read paths keep their shape as the catalog grows: a fixed number of queries, plans on the indexes.

No timings here (``bench/bench_search.py`` measures those): a list of many
versions or a page of search results costs the same few queries as a list of
one, the records built from plain columns equal the ones validation builds,
and on SQLite search's per-model probe reads only the covering indexes of
migration 0003.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event

from registry.adapter import SignatureInfo, TensorInfo
from registry.catalog.models import SignaturePublic, TaskPublic, VersionCreate, VersionPublic
from registry.catalog.search import search_catalog
from registry.catalog.store import Catalog


@pytest.fixture
def catalog(database_url):
    with Catalog(database_url) as catalog:
        yield catalog


def _publish(catalog: Catalog, name: str, n: int, *, size: int = 224) -> None:
    images = TensorInfo("float32", (None, size, size, 3))
    for number in range(n):
        signatures = [SignatureInfo("default", {"images": images}, {"default": TensorInfo("float32", (None, 8))}),
                      SignatureInfo("other", {"x": TensorInfo("string", (None,))}, {"y": TensorInfo("int64", (None,))})]
        tasks = [{"task": "image_feature_vector", "signature": "default", "output_dim": 8, "image_height": size,
                  "image_width": size, "evidence": {"n": number}}]
        catalog.create_version(VersionCreate(
            publisher="acme", name=name, format="tf1_hub", artifact_uri=f"file:///{name}/{number}",
            sha256=f"{number:064x}", size=1, tag_sets=[[]], signatures=signatures, tasks=tasks,
            parent=f"acme/{name}/{number}" if number else None))


def _count_queries(catalog: Catalog, call):
    statements = []

    def record(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append(statement)

    event.listen(catalog.engine, "before_cursor_execute", record)
    try:
        result = call()
    finally:
        event.remove(catalog.engine, "before_cursor_execute", record)
    return len(statements), result


def test_list_versions_costs_the_same_queries_for_one_version_or_forty(catalog):
    _publish(catalog, "one", 1)
    _publish(catalog, "many", 40)
    catalog.set_alias(publisher="acme", name="many", alias="prod", version=7)
    one, _ = _count_queries(catalog, lambda: catalog.list_versions(publisher="acme", name="one"))
    many, versions = _count_queries(catalog, lambda: catalog.list_versions(publisher="acme", name="many"))
    assert many == one <= 6
    assert [v.version for v in versions] == list(range(1, 41))
    assert versions[6].aliases == ["prod"]
    assert versions[5].parent == "acme/many/5" and versions[0].parent is None


def test_records_from_plain_columns_equal_validated_records(catalog):
    _publish(catalog, "m", 3)
    listed = catalog.list_versions(publisher="acme", name="m")
    for record in listed:
        rebuilt = VersionPublic.model_validate(record.model_dump())
        assert rebuilt == record and rebuilt.model_dump() == record.model_dump()
        assert all(type(s) is SignaturePublic for s in record.signatures)
        assert all(type(t) is TaskPublic and t.image_size == (224, 224) for t in record.tasks)
        assert catalog.get_version(record.handle) == record
    assert [s.name for s in listed[0].signatures] == ["default", "other"]
    assert listed[2].tasks[0].evidence == {"n": 2}


def test_a_search_page_costs_a_fixed_number_of_queries(catalog):
    for index in range(12):
        _publish(catalog, f"model-{index:02d}", 2)
    small, first = _count_queries(catalog, lambda: search_catalog(catalog.engine, task="image_feature_vector", limit=2))
    large, every = _count_queries(catalog, lambda: search_catalog(catalog.engine, task="image_feature_vector", limit=10))
    assert small == large
    assert [v.handle for v in first] == ["acme/model-00/2", "acme/model-01/2"]
    assert [v.handle for v in every] == [f"acme/model-{i:02d}/2" for i in range(10)]
    after = search_catalog(catalog.engine, task="image_feature_vector", limit=3, after="acme/model-09")
    assert [v.handle for v in after] == ["acme/model-10/2", "acme/model-11/2"]
    assert after[0] == catalog.get_version("acme/model-10/2")


def test_sqlite_search_probes_each_model_through_the_covering_indexes(tmp_path, monkeypatch):
    from registry.catalog import search

    monkeypatch.setattr(search, "SPARSE_ROWS_PER_RESULT", 0)  # walk the models in name order
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    with Catalog(url) as catalog:
        _publish(catalog, "m", 2)
        plans = []

        def record(conn, cursor, statement, parameters, context, executemany):
            if "max(" in statement:
                plans.extend(row[-1] for row in cursor.connection.execute("EXPLAIN QUERY PLAN " + statement,
                                                                           parameters))

        event.listen(catalog.engine, "before_cursor_execute", record)
        search_catalog(catalog.engine, task="image_feature_vector", image_size=(224, 224), limit=1)
        event.remove(catalog.engine, "before_cursor_execute", record)
    plan = " | ".join(plans)
    assert "COVERING INDEX ix_version_by_model_live" in plan, plan
    assert "COVERING INDEX ix_task_by_version_facts" in plan, plan
