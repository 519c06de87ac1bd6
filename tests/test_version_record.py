"""One version record: its fields are declared once, in ``registry.catalog.models``, and reach every form.

``VersionMetadata`` (what a publisher says) < ``VersionBase`` (+ what publishing
read from the artifact) < the table, the create record and the public record.
Rows become records from the declared fields, ``Registry.publish`` takes the
metadata fields as keyword arguments or as one record, and search takes the
fields marked filterable: none of these places names the fields.
"""

from __future__ import annotations

import inspect

import pytest

from registry.adapter import SignatureInfo, TensorInfo
from registry.api import Registry
from registry.catalog import records
from registry.catalog.models import (
    ModelVersion,
    PublishManifest,
    VersionBase,
    VersionCreate,
    VersionMetadata,
    VersionPublic,
    checked_filters,
    filter_names,
)
from registry.catalog.store import Catalog
from registry.errors import MetadataError
from tests.conftest import REFERENCE_DIR


def test_every_form_of_a_version_has_the_declared_fields():
    metadata, base = set(VersionMetadata.model_fields), set(VersionBase.model_fields)
    assert metadata <= base
    assert base <= set(ModelVersion.__table__.c.keys())
    assert base <= set(VersionCreate.model_fields) and base <= set(VersionPublic.model_fields)
    assert metadata <= set(PublishManifest.model_fields)
    assert set(records.VERSION_COLUMNS) == set(ModelVersion.__table__.c)
    assert records.BASE_FIELDS == tuple(VersionBase.model_fields)


def test_filters_are_metadata_fields_and_never_shadow_a_search_parameter():
    from registry.server import api_v1

    own = set(inspect.signature(Registry.search).parameters) | set(inspect.signature(api_v1.search).parameters)
    assert set(filter_names()) <= set(VersionMetadata.model_fields)
    assert not set(filter_names()) & own


def test_an_unknown_filter_is_an_error_not_an_empty_result(tmp_path):
    with pytest.raises(MetadataError, match=r"unknown search filter 'colour'"):
        checked_filters({"colour": "blue"})
    registry = Registry(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "s"),
                        cache_dir=tmp_path / "cache")
    with pytest.raises(MetadataError, match="colour"):
        registry.search(colour="blue")


@pytest.fixture
def catalog(database_url):
    with Catalog(database_url) as catalog:
        yield catalog


def test_every_base_field_goes_in_and_comes_back_from_every_read(catalog):
    signature = SignatureInfo(name="default", inputs={"x": TensorInfo("float32", (None, 4))},
                              outputs={"y": TensorInfo("float32", (None, 2))})
    record = VersionCreate(publisher="acme", name="m", format="tf2_saved_model", artifact_uri="file:///m/1",
                           sha256="ab" * 32, size=5 << 32, tag_sets=[["serve"], ["serve", "train"]],
                           details={"fact": [1, 2]}, description="the first", signatures=[signature],
                           tasks=[{"task": "text_embedding", "signature": "default", "output_dim": 2}])
    created = catalog.create_version(record)
    read = [created, catalog.get_version("acme/m/1"), *catalog.list_versions(publisher="acme", name="m"),
            *catalog.search(), *catalog.lineage("acme/m/1")]
    for public in read:
        assert {name: getattr(public, name) for name in records.BASE_FIELDS} == \
            {name: getattr(record, name) for name in records.BASE_FIELDS}


def test_publish_takes_metadata_as_keywords_or_as_one_record(tmp_path):
    registry = Registry(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "s"),
                        cache_dir=tmp_path / "cache")
    model = REFERENCE_DIR / "tf2_text_embedding"
    assert registry.publish(model, name="text/a", description="by keyword").description == "by keyword"
    assert registry.publish(model, name="text/a", metadata=VersionMetadata(description="as a record")).description \
        == "as a record"
    assert registry.publish(model, name="text/a", metadata={"description": "as a dict"}).description == "as a dict"
    given = registry.publish(model, name="text/a", metadata=VersionMetadata(description="record"),
                             description="keyword wins")
    assert given.description == "keyword wins"
    for bad in ({"description": ["not", "text"]}, {"metadata": "not a record"}):
        with pytest.raises(MetadataError):
            registry.publish(model, name="text/a", **bad)
    assert [v.version for v in registry.list_versions("text/a")] == [1, 2, 3, 4]  # nothing recorded for refusals
