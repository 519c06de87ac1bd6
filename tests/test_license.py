"""A version's licence, end to end: an optional SPDX identifier, checked against the list the project ships.

Published locally, in client mode and from the CLI; in the JSON API's records, on
the model and version pages; a search filter in the API, the catalog (SQLite and
PostgreSQL), the server's search route and ``model-registry search --filter``.
"""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from registry.api import Registry
from registry.catalog.models import VersionCreate, VersionMetadata, VersionPublic, spdx_licenses
from registry.catalog.store import Catalog
from registry.cli import cli
from registry.errors import MetadataError
from tests.conftest import REFERENCE_DIR
from tests.server_support import create_token

MODEL = REFERENCE_DIR / "tf2_text_embedding"
ARCHIVE = (REFERENCE_DIR / "tf2_text_embedding.tar.gz").read_bytes()


def test_the_shipped_list_is_the_spdx_list_with_its_version():
    version, known = spdx_licenses()
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", version)
    assert {"MIT", "Apache-2.0", "BSD-3-Clause", "GPL-3.0-only", "CC-BY-4.0"} <= set(known.values())
    assert "GPL-3.0" not in known.values()  # deprecated identifiers are left out
    assert len(known) > 500


@pytest.mark.parametrize("given, recorded", [
    ("MIT", "MIT"), ("mit", "MIT"), ("apache-2.0", "Apache-2.0"), (" BSD-3-clause ", "BSD-3-Clause"),
    ("", None), (None, None)])
def test_an_identifier_is_normalised_to_its_canonical_case(given, recorded):
    assert VersionMetadata.checked({"license": given}).license == recorded


@pytest.mark.parametrize("given, suggestion", [
    ("Apache 2", "Apache-2.0"), ("MTI", "MIT"), ("GPL-2.0", "GPL-2.0-only or GPL-2.0-or-later")])
def test_an_unknown_identifier_is_a_typed_error_naming_it_and_a_close_match(given, suggestion):
    with pytest.raises(MetadataError) as caught:
        VersionMetadata.checked({"license": given})
    message = str(caught.value)
    assert repr(given) in message and f"did you mean {suggestion}?" in message and "SPDX License List" in message
    assert isinstance(caught.value, ValueError)


def test_a_record_read_back_keeps_a_licence_this_list_does_not_know():
    """A newer server may know a newer list: what it recorded is not re-judged by an older client."""
    body = {"publisher": "p", "model": "m", "version": 1, "format": "tf2_saved_model", "artifact_uri": "u",
            "sha256": "00" * 32, "size": 1, "tag_sets": [[]], "created_at": "2026-01-01T00:00:00Z",
            "license": "Some-Future-License-9.0"}
    assert VersionPublic.from_json(body).license == "Some-Future-License-9.0"


@pytest.fixture
def catalog(database_url):
    with Catalog(database_url) as catalog:
        yield catalog


def test_the_catalog_records_it_and_search_filters_on_it(catalog):
    for name, license in [("a", "MIT"), ("b", "Apache-2.0"), ("c", None), ("d", "MIT")]:
        catalog.create_version(VersionCreate(
            publisher="acme", name=name, format="tf2_saved_model", artifact_uri=f"file:///{name}", sha256="ab" * 32,
            size=1, tag_sets=[[]], license=license, description=f"model {name}"))
    assert catalog.get_version("acme/a").license == "MIT" and catalog.get_version("acme/c").license is None
    assert [v.handle for v in catalog.search(filters={"license": "MIT"})] == ["acme/a/1", "acme/d/1"]
    assert [v.handle for v in catalog.search(filters={"license": "mit"}, text="model d")] == ["acme/d/1"]
    assert catalog.search(filters={"license": "MIT"}, handles_only=True, limit=None) == ["acme/a/1", "acme/d/1"]
    assert [v.model for v in catalog.search()] == ["a", "b", "c", "d"]
    # As for every criterion, each model's newest version that matches: relicensing keeps the older one findable.
    catalog.create_version(VersionCreate(publisher="acme", name="a", format="tf2_saved_model",
                                         artifact_uri="file:///a2", sha256="cd" * 32, size=1, license="0BSD"))
    assert [v.handle for v in catalog.search(filters={"license": "MIT"})] == ["acme/a/1", "acme/d/1"]
    assert [v.handle for v in catalog.search(filters={"license": "0bsd"})] == ["acme/a/2"]


def test_publish_locally_and_search(tmp_path):
    registry = Registry(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "s"),
                        cache_dir=tmp_path / "cache")
    assert registry.publish(MODEL, name="text/a", license="apache-2.0").license == "Apache-2.0"
    assert registry.publish(MODEL, name="text/b", metadata=VersionMetadata(license="MIT")).license == "MIT"
    assert registry.publish(MODEL, name="text/c").license is None
    with pytest.raises(MetadataError, match="'Apache 2'.*did you mean Apache-2.0"):
        registry.publish(MODEL, name="text/d", license="Apache 2")
    assert [m.model_name for m in registry.list_models()] == ["text/a", "text/b", "text/c"]
    assert [v.handle for v in registry.search(license="MIT")] == ["text/b/1"]
    assert [v.handle for v in registry.search(license="Apache-2.0", task="text_embedding")] == ["text/a/1"]
    with pytest.raises(MetadataError, match="'Nope-1.0'"):
        registry.search(license="Nope-1.0")


def test_from_the_cli_publish_show_and_search(registry_env):
    def run(*args: str, code: int = 0):
        result = CliRunner().invoke(cli, list(args))
        assert result.exit_code == code, result.output
        return result.output

    out = run("publish", str(MODEL), "--name", "text/licensed", "--license", "mit")
    assert "license: MIT" in out
    run("publish", str(MODEL), "--name", "text/plain")
    assert json.loads(run("show", "text/licensed/1", "--json"))["license"] == "MIT"
    assert "license:     MIT" in run("show", "text/licensed/1")
    found = json.loads(run("search", "--filter", "license=MIT", "--json"))
    assert [v["handle"] for v in found] == ["text/licensed/1"]
    error = run("publish", str(MODEL), "--name", "text/bad", "--license", "MTI", code=1)
    assert "did you mean MIT" in error and "Traceback" not in error
    assert "not FIELD=VALUE" in run("search", "--filter", "license", code=2)


def test_in_client_mode_the_api_and_the_pages(registry_server, tmp_path):
    server = registry_server
    client = Registry(server_url=server.url, token=create_token(server.env, "client", "publish"),
                      cache_dir=tmp_path / "cache")
    published = client.publish(MODEL, name="text/licensed", license="bsd-3-clause", description="licensed")
    assert published.license == "BSD-3-Clause"
    client.publish(MODEL, name="text/plain")
    assert client.get_version("text/licensed/1").license == "BSD-3-Clause"
    assert [v.handle for v in client.search(license="bsd-3-clause")] == ["text/licensed/1"]

    status, body = server.json("GET", "/api/v1/models/text/licensed/versions/1")
    assert status == 200 and body["license"] == "BSD-3-Clause"
    status, body = server.json("GET", "/api/v1/search?license=BSD-3-Clause")
    assert status == 200 and [v["model"] for v in body["items"]] == ["licensed"]
    status, body = server.json("GET", "/api/v1/search?license=Nope-1.0")
    assert status == 422 and body["type"] == "MetadataError" and "Nope-1.0" in body["message"]
    status, body = server.publish("text/bad", ARCHIVE, license="Nope-1.0")
    assert status == 422 and body["type"] == "MetadataError" and "Nope-1.0" in body["message"]

    for path in ("/text/licensed", "/text/licensed/1"):
        status, _, page = server.request("GET", path)
        assert status == 200
        assert re.search(rb'<dt>License</dt><dd><a href="https://spdx.org/licenses/BSD-3-Clause.html" '
                         rb'rel="license" id="license"><code>BSD-3-Clause</code></a>', page)
    status, _, page = server.request("GET", "/text/plain/1")
    assert status == 200 and b"<dt>License</dt>" not in page
