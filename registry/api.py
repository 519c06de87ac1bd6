"""The public API: a ``Registry`` object, and module-level functions that use a default one.

A ``Registry`` is the composition root: it builds the parts — the catalog (what
exists), the artifact store (where bytes live), the cache (what is local), the
adapters (how a format is read), the task definitions — and hands each lower
layer exactly the collaborators it uses. Every load, fine-tune and create
passes the matrix gate once, in ``Registry.prepare`` (or, for create,
in the publisher), before an adapter runs.

The module-level functions (``registry.load`` ...) are thin wrappers over
``default_registry()``. The TF1 Hub API (``registry.Module``,
``registry.load_module_spec``) and the Keras layers take ``registry=`` for
a non-default instance.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterable, NamedTuple

from registry.catalog.urls import redact
from registry.config import STORAGE_URL_ENV, Settings
from registry.errors import CatalogError, PluginError, UnsupportedConversion
from registry.handles import catalog_handle, check_scheme, parse, parse_model_name
from registry.modes import resolve_mode

if TYPE_CHECKING:
    from registry.adapter import ConversionReport
    from registry.catalog.models import VersionPublic
    from registry.matrix import Cell, CompatibilityMatrix

ProgressFactory = Callable[[str, "int | None"], ContextManager["Callable[[int], None] | None"]]


class Prepared(NamedTuple):
    """A model ready for an operation: its adapter, local directory, format, and the mode the gate passed."""

    adapter: Any
    path: Path
    format: str
    mode: str


class Converted(NamedTuple):
    """What ``Registry.convert`` did: the version it published, and the adapter's report (``summary()``)."""

    version: VersionPublic
    report: ConversionReport


def _check_storage_scheme(storage_url: str) -> None:
    """A storage URL whose scheme no fsspec backend implements is a bad setting.

    Checked when the storage is opened, not when settings are read: importing fsspec costs ~0.1 s.
    """
    from registry.errors import ConfigError, HandleError

    try:
        check_scheme(storage_url)
    except HandleError as error:
        raise ConfigError(f"{STORAGE_URL_ENV}={storage_url!r} (or storage_url=) is not valid: {error}") from None


class Registry:
    """One catalog, one storage location and one cache. Cheap to create; parts are opened on first use."""

    def __init__(self, database_url: str | None = None, storage_url: str | None = None,
                 cache_dir: str | Path | None = None, offline: bool | None = None, *,
                 server_url: str | None = None, token: str | None = None,
                 settings: Settings | None = None, plugin_manager=None,
                 progress_factory: ProgressFactory | None = None, catalog=None):
        base = settings or Settings.from_env()
        self.settings = base._replace(
            database_url=database_url or base.database_url,
            storage_url=str(storage_url or base.storage_url),
            cache_dir=Path(cache_dir).expanduser() if cache_dir else base.cache_dir,
            offline=base.offline if offline is None else offline,
            # An explicit database or storage location means "this catalog", not the environment's server.
            server_url=server_url or (None if database_url or storage_url else base.server_url),
            token=token or base.token,
        )
        self._plugin_manager = plugin_manager
        self._catalog = catalog
        #: Called as ``factory(label, total_bytes)``; a context manager yielding ``update(n_bytes)``.
        self.progress_factory = progress_factory

    def __repr__(self) -> str:
        s = self.settings
        if s.server_url:
            return f"Registry(server_url={s.server_url!r}, cache_dir='{s.cache_dir}')"
        return (f"Registry(database_url={redact(s.database_url)!r}, storage_url={s.storage_url!r}, "
                f"cache_dir='{s.cache_dir}')")

    @property
    def is_client(self) -> bool:
        """True in client mode: catalog, storage and publishing are a registry server's (``MODEL_REGISTRY_URL``)."""
        return bool(self.settings.server_url) and self._catalog is None

    # -- parts --------------------------------------------------------------------------------

    @property
    def plugin_manager(self):
        if self._plugin_manager is None:
            from registry.plugin_manager import get_plugin_manager

            self._plugin_manager = get_plugin_manager()
        return self._plugin_manager

    @cached_property
    def adapters(self):
        from registry.plugin_manager import AdapterSet

        return AdapterSet(self.plugin_manager)

    @property
    def matrix(self) -> CompatibilityMatrix:
        return self.adapters.matrix

    @cached_property
    def tasks(self):
        """The common signatures registered through this registry's plugins (``registry.tasks``)."""
        from registry.tasks.conformance import DefinitionSet

        return DefinitionSet(self.plugin_manager)

    @cached_property
    def catalog(self):
        """The catalog (a ``registry.catalog.interface.CatalogBackend``); opening it costs nothing until used."""
        if self._catalog is not None:
            return self._catalog
        if self.is_client:
            from registry.client.catalog import HttpCatalog

            return HttpCatalog(self.server_connection)
        from registry.catalog.database import DatabaseCatalog

        return DatabaseCatalog(self.settings.database_url, timeout=self.settings.database_timeout)

    @cached_property
    def server_connection(self):
        """Client mode's connection to the registry server (``registry.client.connection``)."""
        from registry.client.connection import ServerConnection

        s = self.settings
        if s.server_url is None:
            from registry.config import SERVER_URL_ENV
            from registry.errors import RegistryError

            raise RegistryError(f"this registry has no server to connect to: it is not in client mode "
                                f"({SERVER_URL_ENV} is not set)")
        return ServerConnection(s.server_url, token=s.token, offline=s.offline, timeout=s.stall_timeout)

    @cached_property
    def store(self):
        """Where artifacts are written and read (a ``registry.storage.artifacts.ArtifactStorage``).

        The storage URL's, with this process's credentials; in client mode the server's, read with the token.
        """
        if self.is_client:
            from registry.client.storage import ServerArtifactStore

            return ServerArtifactStore(self.server_connection)
        from registry.storage.artifacts import ArtifactStore

        s = self.settings
        _check_storage_scheme(s.storage_url)
        return ArtifactStore(s.storage_url, offline=s.offline, stall_timeout=s.stall_timeout)

    @cached_property
    def cache(self):
        from registry.storage.cache import ModelCache

        return ModelCache.from_settings(self.settings)

    @cached_property
    def resolver(self):
        from registry.resolver import Resolver

        return Resolver(catalog=self.catalog, store=self.store, cache=self.cache, offline=self.settings.offline,
                        progress=self.progress, claims_file=lambda path: self.adapters.claim_file(path) is not None,
                        check_directory=lambda path: self.adapters.detect(path),
                        tfhub_cache_dir=self.settings.tfhub_cache_dir)

    @cached_property
    def publisher(self):
        if self.is_client:
            from registry.client.publishing import UploadingPublisher

            return UploadingPublisher(connection=self.server_connection, catalog=self.catalog, cache=self.cache,
                                      resolver=self.resolver, adapters=self.adapters, progress=self.progress)
        from registry.publishing import Publisher

        return Publisher(catalog=self.catalog, store=self.store, cache=self.cache, resolver=self.resolver,
                         adapters=self.adapters, definitions=self.tasks, plugin_manager=self.plugin_manager,
                         progress=self.progress)

    def progress(self, label: str, total: int | None):
        if self.progress_factory is None:
            return contextlib.nullcontext(None)
        return self.progress_factory(label, total)

    # -- the matrix gate ------------------------------------------------------------------------

    def check(self, format: str, operation: str, mode: str) -> Cell:
        """Return the matrix cell, or raise ``UnsupportedOperation`` naming it and the alternative."""
        return self.matrix.check(format, operation, mode)

    # -- models ---------------------------------------------------------------------------------

    def resolve(self, handle, *, at: datetime | None = None) -> str:
        """The local directory of a handle's model, downloading and caching it if needed.

        Raises ``FormatError`` for a directory in no registered format: what
        ``resolve`` returns is always a model ``load`` accepts. With ``at``, the
        version the handle named at that moment (``get_version(handle, at=...)``).
        """
        return str(self.resolve_path(handle, at=at))

    def resolve_path(self, handle, *, at: datetime | None = None) -> Path:
        handle = self._as_of(handle, at)
        resolved = self.resolver.resolve(_parse(handle))
        if resolved.format is None:
            self.adapters.detect(resolved.path)
        return resolved.path

    def _as_of(self, handle, at: datetime | None):
        """``handle``, or with ``at`` the pinned handle of the version it named then."""
        return handle if at is None else self.get_version(handle, at=at).handle

    def prepare(self, handle, operation: str, mode: str | None = None, *,
                accept_format: Callable[[str], None] | None = None, at: datetime | None = None) -> Prepared:
        """Resolve a handle for ``operation`` in ``mode``, passing the matrix gate exactly once.

        When the catalog knows the version's format, the gate (and ``accept_format``,
        a caller's own refusal such as "a Module needs its own format") runs before
        anything is downloaded; for URLs and paths, right after the bytes are local.
        Every entry point that loads, fine-tunes or opens a model goes through here.
        """
        mode = resolve_mode(mode)
        handle = self._as_of(handle, at)

        def gate(format: str) -> None:
            self.check(format, operation, mode)
            if accept_format is not None:
                accept_format(format)

        resolved = self.resolver.resolve(_parse(handle), before_fetch=gate)
        format = resolved.format or self.adapters.detect(resolved.path).format
        if not resolved.gated:
            gate(format)
        return Prepared(adapter=self.adapters.get(format), path=resolved.path, format=format, mode=mode)

    def load(self, handle, *, mode: str | None = None, at: datetime | None = None, **options: Any) -> Any:
        """Load a model for inference. ``mode`` defaults to TensorFlow's current mode (tf2 when eager); ``at``
        loads the version the handle named at that moment."""
        import tensorflow  # noqa: F401  (first, near the caller: imported deep in the stack it costs ~0.25 s on Python < 3.13; bench/bench_load.py)
        prepared = self.prepare(handle, "load", mode, at=at)
        return prepared.adapter.load(prepared.path, mode=prepared.mode, **options)

    def fine_tune(self, handle, *, mode: str | None = None, **options: Any) -> Any:
        """Load a model with trainable variables, ready for a training loop in ``mode``."""
        import tensorflow  # noqa: F401  (first, near the caller: imported deep in the stack it costs ~0.25 s on Python < 3.13; bench/bench_load.py)
        prepared = self.prepare(handle, "fine_tune", mode)
        return prepared.adapter.fine_tune(prepared.path, mode=prepared.mode, **options)

    def publish(self, source: Any, *, name: str, parent: str | None = None, tasks: Iterable[str] = (),
                mode: str | None = None, metadata=None, idempotency_key: str | None = None,
                legacy_handles: Iterable[str] = (), **kwargs: Any):
        """Publish a model directory, a ``.tar.gz``, or an in-memory model as the next version of ``name``.

        Keyword arguments named after ``registry.catalog.models.VersionMetadata`` fields
        (``description=``...) are what the publisher says about the version, validated
        here (``MetadataError``); ``metadata=VersionMetadata(...)`` gives them as one record,
        (or a dict), and a keyword argument given too replaces its field. The other keyword arguments
        go to the adapter that creates an in-memory model. ``idempotency_key``: a publish retried with the
        same key gets the version its first try committed, not a second one (client mode sends one itself).
        ``legacy_handles``: tfhub.dev or Kaggle handles that name the new version (``add_legacy_handles``).
        """
        from registry.catalog.models import VersionMetadata
        from registry.legacy.handles import normalise_all

        metadata = VersionMetadata.merged(metadata, VersionMetadata.split(kwargs))
        extra = {"legacy_handles": normalise_all(list(legacy_handles))} if legacy_handles else {}
        return self.publisher.publish(source, name=name, metadata=metadata, parent=parent, tasks=tasks, mode=mode,
                                      idempotency_key=idempotency_key, **extra, **kwargs)

    def convert(self, handle, *, to: str, name: str | None = None, mode: str | None = None, metadata=None,
                **kwargs: Any) -> Converted:
        """Convert a catalog version to format ``to`` and publish the result as a new version derived from it.

        The new version's parent (lineage) is the source version, and it is published as
        the next version of ``name``: by default the source's own model, so that the
        converted form is simply that model's newest version (a caller keeping the two
        apart names another model). Keyword arguments named after ``VersionMetadata``
        fields (``description=``...) or ``metadata=`` describe the new version, as in
        ``publish``; the others go to the source format's adapter (``FormatAdapter.convert``).

        Everything that can refuse runs before anything is published: a format that
        converts to nothing, or not to ``to`` (``UnsupportedConversion``, before any
        download); the matrix gate ("load" of the source's format, "create" of ``to``,
        in ``mode``); the adapter's own refusals (``ConversionError``). In client mode
        the source is downloaded from the server and the converted model uploaded to it.
        """
        import tensorflow  # noqa: F401  (first, near the caller, as in load)

        from registry.catalog.models import VersionMetadata

        metadata = VersionMetadata.merged(metadata, VersionMetadata.split(kwargs))
        source = self.get_version(handle)
        mode = resolve_mode(mode)

        def convertible(format: str) -> None:
            conversions = self.adapters.get(format).conversions
            if to not in conversions:
                can = f"converts only to {', '.join(conversions)}" if conversions else "converts to no other format"
                raise UnsupportedConversion(f"cannot convert {source.handle} to {to!r}: a {format} model {can}")

        convertible(source.format)
        self.check(to, "create", mode)
        prepared = self.prepare(source.handle, "load", mode, accept_format=convertible)
        with self.cache.workdir() as work:
            target = work / "converted"
            report = prepared.adapter.convert(prepared.path, target, to=to, source=source.handle, **kwargs)
            written = self.adapters.detect(target).format
            if written != to:
                raise PluginError(f"the {prepared.format} adapter was asked to convert to {to} but wrote a "
                                  f"{written} model; nothing was published")
            version = self.publish(target, name=name or source.model_name, parent=source.handle, mode=mode,
                                   metadata=metadata)
        return Converted(version=version, report=report)

    # -- catalog --------------------------------------------------------------------------------

    def get_version(self, handle, *, include_deleted: bool = False, at: datetime | None = None):
        """The version ``handle`` names; with ``at`` (a datetime; naive is local time), the one it named then."""
        return self.catalog.get_version(catalog_handle(handle), include_deleted=include_deleted, at=at)

    def download_counts(self, name: str) -> dict[int, int]:
        """{version number: archives served by the registry's servers} for ``publisher/model``'s downloaded
        versions (flushed by each server every few seconds: see ``registry.server.background``)."""
        publisher, model = parse_model_name(name)
        return self.catalog.download_counts(publisher=publisher, name=model)

    def alias_history(self, handle):
        """Every version ``publisher/model@alias`` has named, oldest first: ``AliasInterval`` records with the
        version, since, until (None while it lasts), and who moved it there."""
        return self.catalog.alias_history(catalog_handle(handle))

    def audit(self, *, since: datetime | None = None, until: datetime | None = None, model: str | None = None,
              actor: str | None = None, action: str | None = None, limit: int = 100, after: str | int | None = None):
        """Audit entries, newest first (``registry.catalog.audit.AuditLog.entries``); needs an admin token in
        client mode."""
        return self.catalog.audit.entries(since=since, until=until, model=model, actor=actor, action=action,
                                          limit=limit, after=after)

    @cached_property
    def webhooks(self):
        """The catalog's webhooks (``registry.catalog.webhooks.WebhookStore``, or the server's in client mode),
        under this registry's allow-list and retry settings."""
        if self.is_client:
            from registry.client.webhooks import RemoteWebhooks

            return RemoteWebhooks(self.server_connection)
        from registry.catalog.webhooks import WebhookStore

        store = getattr(self.catalog, "store", None)
        if store is None:
            raise CatalogError(f"{self.catalog!r} keeps no webhooks: they live in a database catalog")
        return WebhookStore(store, self.settings.webhooks)

    @cached_property
    def cards(self):
        """Card edits (``registry.catalog.cards.CardStore``; in client mode the server's, with a publish token)."""
        if self.is_client:
            from registry.client.catalog import RemoteCards

            return RemoteCards(self.server_connection)
        from registry.catalog.cards import CardStore

        store = getattr(self.catalog, "store", None)
        if store is None:
            raise CatalogError(f"{self.catalog!r} keeps no cards: they live in a database catalog")
        return CardStore(store)

    def set_card(self, handle, card: str | None):
        """Give a version a new card (Markdown; None removes it) without touching its artifact; the fields its front
        matter names are re-read from it. Returns the version's record."""
        return self.cards.set_version_card(catalog_handle(handle), card)

    def publisher_card(self, publisher: str):
        """The publisher's card record (``card`` is None when it has none)."""
        return self.cards.publisher_card(publisher)

    def set_publisher_card(self, publisher: str, card: str | None):
        """Set (None: remove) the card shown on the publisher's page."""
        return self.cards.set_publisher_card(publisher, card)

    def list_models(self, *, publisher: str | None = None, limit: int | None = None, after: str | None = None):
        """Models sorted by ``publisher/name``; ``limit`` and ``after`` (a ``publisher/model``) page through them."""
        return self.catalog.list_models(publisher=publisher, limit=limit, after=after)

    def list_versions(self, name: str, *, include_deleted: bool = False):
        publisher, model = parse_model_name(name)
        return self.catalog.list_versions(publisher=publisher, name=model, include_deleted=include_deleted)

    def version_summaries(self, name: str, *, include_deleted: bool = False):
        """The model's versions as light rows (number, format, size, sha256, created, aliases, deleted), oldest 1st."""
        publisher, model = parse_model_name(name)
        return self.catalog.version_summaries(publisher=publisher, name=model, include_deleted=include_deleted)

    def lineage(self, handle):
        return self.catalog.lineage(catalog_handle(handle))

    def children(self, handle):
        """The live versions published with this one as their parent."""
        return self.catalog.children(catalog_handle(handle))

    def set_alias(self, name: str, alias: str, version: int):
        publisher, model = parse_model_name(name)
        return self.catalog.set_alias(publisher=publisher, name=model, alias=alias, version=version)

    def remove_alias(self, name: str, alias: str) -> None:
        publisher, model = parse_model_name(name)
        self.catalog.remove_alias(publisher=publisher, name=model, alias=alias)

    def delete_version(self, handle):
        """Delete (hide) the version ``handle`` names: ``pub/model/N`` or ``pub/model@alias``, never a bare model."""
        from registry.handles import explicit_version

        record = self.get_version(explicit_version(handle, "delete"))
        return self.catalog.delete_version(publisher=record.publisher, name=record.model, version=record.version)

    # -- legacy handles (tfhub.dev, Kaggle: registry.legacy.handles) ---------------------------

    def add_legacy_handles(self, handle, legacy: Iterable[str]):
        """Record legacy handles (``https://tfhub.dev/...``, Kaggle URLs, kagglehub handles; any spelling, stored
        canonical) as names of the version ``handle`` names; one naming another version is
        ``LegacyHandleConflict``."""
        from registry.legacy.handles import normalise_all

        return self.catalog.add_legacy_handles(catalog_handle(handle), normalise_all(list(legacy)))

    def remove_legacy_handles(self, handle, legacy: Iterable[str]):
        """Forget legacy handles of the version ``handle`` names."""
        from registry.legacy.handles import normalise_all

        return self.catalog.remove_legacy_handles(catalog_handle(handle), normalise_all(list(legacy)))

    def find_legacy_handle(self, url: str):
        """The version a legacy handle (any spelling) names, or None; unversioned, the highest-numbered one."""
        from registry.legacy.handles import normalise_legacy_handle

        return self.catalog.find_legacy_handle(normalise_legacy_handle(url))

    def list_legacy_handles(self) -> dict[str, str]:
        """{legacy handle: ``publisher/model/N``} of every legacy handle in the catalog."""
        return self.catalog.list_legacy_handles()

    def search(self, *, task: str | None = None, image_size: tuple[int, int] | None = None,
               output_dim: int | None = None, format: str | None = None, publisher: str | None = None,
               text: str | None = None, limit: int | None = 100, after: str | None = None, sort: str | None = None,
               **filters: Any):
        """For each model, its newest live version matching every criterion given; sorted by model name.

        ``task`` is a common signature (``registry.tasks``); ``image_size`` is
        ``(height, width)``; ``text`` words, as ``find``'s ``q`` (each must
        begin a word of the name, publisher, descriptions, card, tags, task or format); ``after`` a ``publisher/model``
        to continue after (the next page starts past the last result's model).
        ``filters`` are equalities on the version's filterable metadata fields
        (``registry.catalog.models.filter_names()``), validated as those fields are.
        ``sort="downloads"`` puts the most downloaded models first (without ``after``).
        """
        from registry.discovery import search

        return search(self.catalog, self.tasks, task=task, image_size=image_size, output_dim=output_dim,
                      format=format, publisher=publisher, text=text, limit=limit, after=after, filters=filters,
                      formats=self.adapters.formats if format is not None else None,
                      **({"sort": sort} if sort is not None else {}))

    def find(self, query=None, **params: Any):
        """One page of the search by need — what the catalog page, ``GET /api/v1/search`` and ``model-registry
        search`` run: every word of ``q`` must match (name, publisher, description, card, tags, task or format),
        with filters, a sort and a page. ``query`` is a ``registry.catalog.search.SearchQuery``, or give its
        fields as keywords (``find(q="image feature vector 224", sort="downloads")``); a ``SearchResults``.
        """
        from registry.catalog.search import SearchQuery
        from registry.discovery import find

        query = query if query is not None else SearchQuery.from_params(params)
        return find(self.catalog, self.tasks, query, formats=self.adapters.formats)

    def interchangeable(self, handle_a, handle_b, *, task: str | None = None):
        """Whether ``handle_b`` can replace ``handle_a`` for a task: see ``registry.discovery.interchangeable``."""
        from registry.discovery import interchangeable

        return interchangeable(self.get_version(handle_a), self.get_version(handle_b), self.tasks, task=task)


def _parse(handle):
    """``registry.handles.parse``, and a legacy handle written without a scheme (``tfhub.dev/...``, a kagglehub
    handle ``owner/model/framework/variation[/N]``) as its canonical URL: the resolver finds those in the
    catalog (``registry.legacy.handles``)."""
    if isinstance(handle, str) and "://" not in handle:
        from registry.legacy.handles import looks_legacy, normalise_legacy_handle

        if looks_legacy(handle):
            return parse(normalise_legacy_handle(handle))
    return parse(handle)


_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The registry configured from the environment, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Registry()
        return _default


def reset_default_registry() -> None:
    """Forget the default registry, so the next call re-reads the environment (tests, after config changes)."""
    global _default
    with _default_lock:
        _default = None


def publish(source: Any, *, name: str, **kwargs: Any):
    return default_registry().publish(source, name=name, **kwargs)


def load(handle, *, mode: str | None = None, **options: Any):
    import tensorflow  # noqa: F401  (first, near the caller: imported deep in the stack it costs ~0.25 s on Python < 3.13; bench/bench_load.py)
    return default_registry().load(handle, mode=mode, **options)


def fine_tune(handle, *, mode: str | None = None, **options: Any):
    import tensorflow  # noqa: F401  (first, near the caller: imported deep in the stack it costs ~0.25 s on Python < 3.13; bench/bench_load.py)
    return default_registry().fine_tune(handle, mode=mode, **options)


def convert(handle, *, to: str, name: str | None = None, **kwargs: Any) -> Converted:
    import tensorflow  # noqa: F401  (first, near the caller, as in load)
    return default_registry().convert(handle, to=to, name=name, **kwargs)


def resolve(handle, *, at: datetime | None = None) -> str:
    return default_registry().resolve(handle, at=at)


def get_version(handle, **kwargs: Any):
    return default_registry().get_version(handle, **kwargs)


def list_models(**kwargs: Any):
    return default_registry().list_models(**kwargs)


def list_versions(name: str, **kwargs: Any):
    return default_registry().list_versions(name, **kwargs)


def set_alias(name: str, alias: str, version: int):
    return default_registry().set_alias(name, alias, version)


def remove_alias(name: str, alias: str) -> None:
    default_registry().remove_alias(name, alias)


def delete_version(handle):
    return default_registry().delete_version(handle)


def lineage(handle):
    return default_registry().lineage(handle)


def alias_history(handle):
    return default_registry().alias_history(handle)


def audit(**filters: Any):
    return default_registry().audit(**filters)


def search(**criteria: Any):
    return default_registry().search(**criteria)


def find(query=None, **params: Any):
    return default_registry().find(query, **params)


def set_card(handle, card: str | None):
    return default_registry().set_card(handle, card)


def interchangeable(handle_a, handle_b, *, task: str | None = None):
    return default_registry().interchangeable(handle_a, handle_b, task=task)


def add_legacy_handles(handle, legacy):
    return default_registry().add_legacy_handles(handle, legacy)


def remove_legacy_handles(handle, legacy):
    return default_registry().remove_legacy_handles(handle, legacy)


def find_legacy_handle(url: str):
    return default_registry().find_legacy_handle(url)


def list_legacy_handles() -> dict[str, str]:
    return default_registry().list_legacy_handles()


def compatibility_matrix() -> CompatibilityMatrix:
    return default_registry().matrix
