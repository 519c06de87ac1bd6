"""The declared seams: the catalog interface and the artifact storage, filled completely by each implementation.

``CatalogBackend`` (``registry.catalog.interface``) declares everything its callers use — versions,
aliases, lineage, search, tokens, health — and both the database catalog and the server's (``HttpCatalog``)
have all of it, refusing with a typed error what they cannot do. ``ArtifactStorage``
(``registry.storage.artifacts``) is the one object that writes and reads archives, in local and client mode.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import registry
from registry.api import Registry
from registry.catalog.database import DatabaseCatalog
from registry.catalog.interface import CatalogBackend, TokenBackend
from registry.catalog.models import VersionCreate
from registry.catalog.tokens import TokenStore
from registry.client.catalog import HttpCatalog, RemoteTokens
from registry.client.connection import ServerConnection
from registry.client.storage import ServerArtifactStore
from registry.config import Settings
from registry.errors import (
    AccessDenied,
    ArtifactError,
    CatalogError,
    HandleError,
    OfflineError,
    QueryError,
    ServerError,
)
from registry.handles import CatalogHandle, catalog_handle, parse, parse_image_size
from registry.storage.artifacts import ArtifactStorage, ArtifactStore

REPO = Path(__file__).resolve().parent.parent


def declared(protocol: type) -> set[str]:
    """The members a Protocol declares: its methods and properties, and its annotated attributes."""
    return {n for n in vars(protocol) if not n.startswith("_")} | set(getattr(protocol, "__annotations__", {}))


def members(obj) -> set[str]:
    """What an object offers: its class's public members and the attributes set on it."""
    return {n for n in dir(type(obj)) if not n.startswith("_")} | {n for n in vars(obj) if not n.startswith("_")}


def _signature(function) -> list[tuple[str, object]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


@pytest.fixture
def catalogs(tmp_path):
    database = DatabaseCatalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    server = HttpCatalog(ServerConnection("http://127.0.0.1:9"))
    yield {"database": database, "server": server}
    database.close()


@pytest.mark.parametrize("kind", ["database", "server"])
def test_each_catalog_has_every_member_the_interface_declares(catalogs, kind):
    catalog = catalogs[kind]
    assert declared(CatalogBackend) - members(catalog) == set()
    for name in declared(CatalogBackend) & {n for n in vars(CatalogBackend) if callable(vars(CatalogBackend)[n])}:
        theirs = getattr(type(catalog), name)
        if _signature(theirs)[-1:] != [("fields", inspect.Parameter.VAR_KEYWORD)] and name != "search":
            assert _signature(theirs) == _signature(getattr(CatalogBackend, name)), (kind, name)


def test_token_stores_have_every_member_the_token_interface_declares(tmp_path):
    assert declared(TokenBackend) - {n for n in dir(TokenStore) if not n.startswith("_")} == set()
    assert declared(TokenBackend) - {n for n in dir(RemoteTokens) if not n.startswith("_")} == set()
    assert isinstance(HttpCatalog(ServerConnection("http://127.0.0.1:9")).tokens, TokenBackend)


def test_what_a_server_catalog_cannot_do_is_refused_typed(catalogs):
    server = catalogs["server"]
    with pytest.raises(CatalogError, match="by upload"):
        server.create_version(VersionCreate(publisher="p", name="m", format="f", artifact_uri="a", sha256="0" * 64,
                                           size=1, tag_sets=[[]]))
    with pytest.raises(AccessDenied, match="checked by the registry server"):
        server.tokens.authenticate("mr_anything")
    assert not hasattr(server, "open_artifact")  # archives are the storage seam's, not the catalog's


def test_nothing_in_the_package_reaches_past_the_catalog_interface():
    """``<anything>.catalog.NAME`` outside ``registry/catalog/`` names only what ``CatalogBackend`` declares."""
    modules = {p.stem for p in (REPO / "registry" / "catalog").glob("*.py")}
    allowed = declared(CatalogBackend) | modules
    reach = re.compile(r"\bcatalog\.(\w+)")
    found = []
    for top in ("registry", "adapters", "plugins"):
        for path in sorted((REPO / top).rglob("*.py")):
            relative = path.relative_to(REPO)
            if relative.parts[:2] in (("registry", "adapters"), ("registry", "plugins"), ("registry", "catalog")):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                found += [f"{relative}:{number}: catalog.{m.group(1)}" for m in reach.finditer(code)
                          if m.group(1) not in allowed and "catalog.db" not in code]
    assert found == []
    resolver = (REPO / "registry" / "resolver.py").read_text(encoding="utf-8")
    assert "getattr(self.catalog" not in resolver


def test_both_artifact_stores_have_every_member_the_storage_interface_declares(tmp_path):
    local = ArtifactStore(str(tmp_path / "store"))
    client = ServerArtifactStore(ServerConnection("http://127.0.0.1:9"))
    for store in (local, client):
        assert declared(ArtifactStorage) - members(store) == set(), store
        assert isinstance(store, ArtifactStorage)


def test_the_local_store_writes_and_reads_one_archive(tmp_path):
    store = ArtifactStore(str(tmp_path / "store"))
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"not really an archive, but bytes are bytes")
    uri = store.put(archive, "ab" * 32)
    assert store.exists(uri) and store.local_file(uri) == uri
    with store.open(uri) as stream:
        assert stream.read() == archive.read_bytes()
    offline = ArtifactStore(str(tmp_path / "store"), offline=True)
    with offline.open(uri) as stream:  # local bytes are readable offline
        assert stream.read() == archive.read_bytes()
    with pytest.raises(OfflineError):
        with offline.open("gs://bucket/sha256/ab/x.tar.gz"):
            pass


def test_the_client_store_reads_through_the_server_and_writes_only_by_upload(tmp_path):
    store = ServerArtifactStore(ServerConnection("http://127.0.0.1:9", token="mr_secret"))
    with pytest.raises(ArtifactError, match="only with its version"):
        store.put(tmp_path / "a.tar.gz", "ab" * 32)
    assert store.local_file("http://127.0.0.1:9/p/m/1?tf-hub-format=compressed") is None
    with pytest.raises(ServerError, match="refusing to send it the token"):
        with store.open("https://elsewhere.example/p/m/1"):
            pass


def test_a_registry_builds_the_store_of_its_mode(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}", storage_url=str(tmp_path / "s"),
                        cache_dir=tmp_path / "cache")
    local = Registry(settings=settings)
    assert isinstance(local.store, ArtifactStore) and local.resolver.store is local.store
    assert local.publisher.store is local.store
    client = Registry(settings=settings._replace(server_url="http://127.0.0.1:9"))
    assert isinstance(client.store, ServerArtifactStore) and client.resolver.store is client.store


def test_one_message_for_a_handle_that_is_not_a_catalog_handle():
    handle = catalog_handle("pub/model@prod")
    assert handle == CatalogHandle("pub", "model", None, "prod") and catalog_handle(handle) is handle
    for text in ("gs://bucket/model", "/tmp/model", "./m.tar.gz"):
        with pytest.raises(HandleError, match="is not a catalog handle: use 'publisher/model'"):
            catalog_handle(text)
    with pytest.raises(HandleError, match="is not a catalog handle: use"):
        registry.Registry(database_url="sqlite://", storage_url="memory://x").get_version("gs://b/m")


def test_one_image_size_grammar():
    assert parse_image_size("224x192") == (224, 192) == parse_image_size(" 224 , 192 ")
    assert parse_image_size("96") == (96, 96) and parse_image_size("96X96") == (96, 96)
    assert parse_image_size(None) is None and parse_image_size("") is None
    for bad in ("big", "224x", "x224", "1x2x3", "-1x3", "2.5x3"):
        with pytest.raises(QueryError, match="--image-size takes HEIGHTxWIDTH"):
            parse_image_size(bad, "--image-size")


def test_a_parsed_handle_is_passed_on_not_parsed_again(tmp_path, monkeypatch):
    """``Registry.prepare`` parses once; the resolver and the catalog take the parsed value as it is."""
    calls = []
    import registry.api as api_module
    import registry.handles as handles_module

    real = handles_module.parse

    def counting(handle):
        if isinstance(handle, str):
            calls.append(handle)
        return real(handle)

    for module in (api_module, handles_module):
        monkeypatch.setattr(module, "parse", counting)
    reg = Registry(database_url=f"sqlite:///{tmp_path / 'c.db'}", storage_url=str(tmp_path / "s"),
                   cache_dir=tmp_path / "cache")
    with pytest.raises(registry.ModelNotFound):
        reg.prepare("pub/none/1", "load", "tf2")
    assert calls == ["pub/none/1"]
    assert parse(parse("pub/none/1")) == parse("pub/none/1")
