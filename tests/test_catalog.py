"""The catalog's rules, on a real SQLite file and a real PostgreSQL database.

Versions count from 1 and are never reused; ``publisher/model`` skips deleted
versions; aliases move and ``latest`` is reserved; lineage follows parents;
signatures and tasks come back as they went in; every failure is a typed error.
"""

from __future__ import annotations

import pytest

from registry.adapter import SignatureInfo, TensorInfo
from registry.catalog import Catalog, VersionPublic
from registry.catalog.models import VersionCreate
from registry.errors import CatalogError, HandleError, ModelNotFound, VersionNotFound
from registry.handles import CatalogHandle, parse


@pytest.fixture
def catalog(database_url):
    with Catalog(database_url) as catalog:
        yield catalog


def embedding_signature(name: str = "default", *, tags=(), dim: int = 8) -> SignatureInfo:
    return SignatureInfo(
        name=name,
        inputs={"text": TensorInfo("string", (None,))},
        outputs={"default": TensorInfo("float32", (None, dim))},
        tags=frozenset(tags),
    )


def publish(catalog: Catalog, name: str = "text/embed", **overrides) -> VersionPublic:
    publisher, model = name.split("/")
    fields = dict(
        publisher=publisher, name=model, format="tf1_hub", artifact_uri=f"memory://artifacts/{name}.tar.gz",
        sha256="ab" * 32, size=1234, tag_sets=[[]], signatures=[embedding_signature()],
    )
    fields.update(overrides)
    return catalog.create_version(VersionCreate(**fields))


def handle(text: str) -> CatalogHandle:
    return parse(text)


def test_versions_count_from_one_and_deleted_numbers_are_never_reused(catalog):
    assert [publish(catalog).version for _ in range(3)] == [1, 2, 3]
    deleted = catalog.delete_version(publisher="text", name="embed", version=3)
    assert deleted.deleted and deleted.version == 3

    assert publish(catalog).version == 4
    assert [v.version for v in catalog.list_versions(publisher="text", name="embed")] == [1, 2, 4]
    everything = catalog.list_versions(publisher="text", name="embed", include_deleted=True)
    assert [(v.version, v.deleted) for v in everything] == [(1, False), (2, False), (3, True), (4, False)]
    # Another model has its own numbering.
    assert publish(catalog, "text/other").version == 1


def test_newest_skips_deleted_versions(catalog):
    for _ in range(3):
        publish(catalog)
    catalog.delete_version(publisher="text", name="embed", version=3)
    assert catalog.get_version(handle("text/embed")).version == 2
    assert catalog.get_version(handle("text/embed@latest")).version == 2

    catalog.delete_version(publisher="text", name="embed", version=1)
    catalog.delete_version(publisher="text", name="embed", version=2)
    with pytest.raises(VersionNotFound, match="every version of it was deleted"):
        catalog.get_version(handle("text/embed"))
    model = catalog.get_model(publisher="text", name="embed")
    assert (model.latest_version, model.version_count) == (None, 0)


def test_a_deleted_version_asked_for_by_number_says_it_was_deleted(catalog):
    publish(catalog)
    publish(catalog)
    first = catalog.delete_version(publisher="text", name="embed", version=1)
    again = catalog.delete_version(publisher="text", name="embed", version=1)
    assert again.deleted and again == first  # deleting twice changes nothing

    with pytest.raises(VersionNotFound, match=r"text/embed/1 was deleted.*live versions are 2"):
        catalog.get_version(handle("text/embed/1"))
    kept = catalog.get_version(handle("text/embed/1"), include_deleted=True)
    assert kept.deleted and kept.artifact_uri == first.artifact_uri


def test_aliases_move_and_are_listed(catalog):
    publish(catalog)
    publish(catalog)
    assert catalog.set_alias(publisher="text", name="embed", alias="prod", version=1).aliases == ["prod"]
    assert catalog.get_version(handle("text/embed@prod")).version == 1

    moved = catalog.set_alias(publisher="text", name="embed", alias="prod", version=2)
    assert (moved.version, moved.aliases) == (2, ["prod"])
    assert catalog.get_version(handle("text/embed@prod")).version == 2
    assert catalog.get_version(handle("text/embed/1")).aliases == []
    catalog.set_alias(publisher="text", name="embed", alias="canary", version=2)
    assert catalog.get_model(publisher="text", name="embed").aliases == {"canary": 2, "prod": 2}

    catalog.remove_alias(publisher="text", name="embed", alias="prod")
    with pytest.raises(VersionNotFound, match="has no alias 'prod'.*aliases are canary"):
        catalog.get_version(handle("text/embed@prod"))
    with pytest.raises(VersionNotFound, match="has no alias 'prod'"):
        catalog.remove_alias(publisher="text", name="embed", alias="prod")
    assert catalog.get_version(handle("text/embed/2")).aliases == ["canary"]


def test_an_alias_of_a_deleted_version_says_so(catalog):
    publish(catalog)
    publish(catalog)
    catalog.set_alias(publisher="text", name="embed", alias="prod", version=1)
    catalog.delete_version(publisher="text", name="embed", version=1)
    with pytest.raises(VersionNotFound, match="points at version 1, which was deleted"):
        catalog.get_version(handle("text/embed@prod"))
    with pytest.raises(VersionNotFound, match="was deleted"):
        catalog.set_alias(publisher="text", name="embed", alias="prod", version=1)
    # Moving the alias to a live version repairs it.
    catalog.set_alias(publisher="text", name="embed", alias="prod", version=2)
    assert catalog.get_version(handle("text/embed@prod")).version == 2


def test_latest_is_reserved(catalog):
    publish(catalog)
    with pytest.raises(CatalogError, match="'latest' is reserved"):
        catalog.set_alias(publisher="text", name="embed", alias="latest", version=1)
    with pytest.raises(CatalogError, match="'latest' is reserved"):
        catalog.remove_alias(publisher="text", name="embed", alias="latest")
    publish(catalog)
    assert catalog.get_version(CatalogHandle("text", "embed", alias="latest")).version == 2


def test_lineage_follows_parents_to_the_root(catalog):
    base = publish(catalog, "vision/base")
    publish(catalog, "vision/base")  # newer base version, not an ancestor
    catalog.set_alias(publisher="vision", name="base", alias="stable", version=1)
    child = publish(catalog, "vision/tuned", parent="vision/base@stable")
    grandchild = publish(catalog, "vision/tuned", parent="vision/tuned")

    assert child.parent == "vision/base/1"
    assert grandchild.parent == "vision/tuned/1"
    chain = catalog.lineage(handle("vision/tuned"))
    assert [v.handle for v in chain] == ["vision/tuned/2", "vision/tuned/1", "vision/base/1"]
    assert chain[-1].parent is None and chain[-1].sha256 == base.sha256

    # A deleted ancestor stays in the lineage, marked.
    catalog.delete_version(publisher="vision", name="base", version=1)
    assert [(v.handle, v.deleted) for v in catalog.lineage("vision/tuned/2")][-1] == ("vision/base/1", True)


def test_a_missing_parent_is_refused_and_nothing_is_recorded(catalog):
    publish(catalog, "vision/base")
    with pytest.raises(VersionNotFound, match="has no version 9"):
        publish(catalog, "vision/tuned", parent="vision/base/9")
    with pytest.raises(ModelNotFound, match="no model vision/nothing"):
        publish(catalog, "vision/tuned", parent="vision/nothing")
    with pytest.raises(ModelNotFound):
        catalog.get_model(publisher="vision", name="tuned")
    assert publish(catalog, "vision/tuned").version == 1


def test_signatures_tasks_and_details_round_trip(catalog):
    signatures = [
        embedding_signature("default", tags=()),
        embedding_signature("default", tags=("train",), dim=16),
        embedding_signature("tokens", tags=("train",)),
        SignatureInfo("ragged", inputs={"ids": TensorInfo("int64", None, kind="ragged")},
                      outputs={"out": TensorInfo("float32", (2, None, 3), kind="sparse")}),
    ]
    tasks = [{
        "task": "image_feature_vector", "signature": "default", "tags": ["train"], "output_dim": 16,
        "image_height": 224, "image_width": 192, "evidence": {"checked_batch": 2},
    }, {"task": "text_embedding", "signature": "default"}]
    created = publish(catalog, tag_sets=[["train"], []], signatures=signatures, tasks=tasks,
                      details={"attached": ["image_module_info"], "expected_image_size": [224, 192]},
                      description="A tiny text embedding.")
    fetched = catalog.get_version(handle("text/embed/1"))
    assert fetched == created
    assert fetched.tag_sets == [["train"], []]
    assert fetched.details == {"attached": ["image_module_info"], "expected_image_size": [224, 192]}
    assert fetched.created_at.tzinfo is not None

    by_key = {(tuple(s.tags), s.name): s for s in fetched.signatures}
    assert set(by_key) == {((), "default"), (("train",), "default"), (("train",), "tokens"), ((), "ragged")}
    assert by_key[("train",), "default"].outputs == {"default": {"dtype": "float32", "shape": [None, 16],
                                                                 "kind": "dense"}}
    ragged = by_key[(), "ragged"]
    assert TensorInfo.from_json(ragged.inputs["ids"]) == TensorInfo("int64", None, kind="ragged")
    assert TensorInfo.from_json(ragged.outputs["out"]) == TensorInfo("float32", (2, None, 3), kind="sparse")

    feature, text = fetched.tasks
    assert (feature.task, feature.tags, feature.output_dim, feature.image_size) == (
        "image_feature_vector", ["train"], 16, (224, 192))
    assert feature.evidence == {"checked_batch": 2}
    assert (text.task, text.tags, text.output_dim, text.image_size, text.evidence) == (
        "text_embedding", [], None, None, {})

    catalog.close()  # records are plain values: still whole after the connections are gone
    assert fetched.signatures[0].inputs["text"]["dtype"] == "string"


def test_model_description_is_set_once_and_filled_when_empty(catalog):
    publish(catalog)
    assert catalog.get_model(publisher="text", name="embed").description == ""
    publish(catalog, description="Embeds text.")
    publish(catalog, description="Something else.")
    model = catalog.get_model(publisher="text", name="embed")
    assert model.description == "Embeds text."
    assert catalog.get_version(handle("text/embed/3")).description == "Something else."


def test_list_models(catalog):
    publish(catalog, "text/embed")
    publish(catalog, "text/embed")
    publish(catalog, "vision/net")
    publish(catalog, "text/aaa")
    assert [m.model_name for m in catalog.list_models()] == ["text/aaa", "text/embed", "vision/net"]
    text = catalog.list_models(publisher="text")
    assert [(m.name, m.latest_version, m.version_count) for m in text] == [("aaa", 1, 1), ("embed", 2, 2)]
    assert catalog.list_models(publisher="nobody") == []


def test_errors_are_typed_and_say_what_to_do(catalog):
    publish(catalog)
    with pytest.raises(ModelNotFound, match="did you mean text/embed") as missing:
        catalog.get_version(handle("text/embedd"))
    assert isinstance(missing.value, LookupError)
    with pytest.raises(ModelNotFound):
        catalog.list_versions(publisher="text", name="nothing")
    with pytest.raises(VersionNotFound, match="has no version 5; its live versions are 1"):
        catalog.get_version(handle("text/embed/5"))
    with pytest.raises(VersionNotFound, match="has no alias 'prod'.*set one with set_alias"):
        catalog.get_version(handle("text/embed@prod"))
    with pytest.raises(CatalogError, match="whole number from 1"):
        catalog.set_alias(publisher="text", name="embed", alias="prod", version=0)
    with pytest.raises(CatalogError, match="given twice"):
        publish(catalog, signatures=[embedding_signature(), embedding_signature()])
    with pytest.raises(CatalogError, match="needs 'task' and 'signature'"):
        publish(catalog, tasks=[{"task": "text_embedding"}])
    with pytest.raises(HandleError, match="invalid model name"):
        publish(catalog, "text/Bad Name")
    with pytest.raises(HandleError, match="not a catalog handle"):
        catalog.get_version("./local/model")
    # None of the refused calls used up a number.
    assert publish(catalog).version == 2
