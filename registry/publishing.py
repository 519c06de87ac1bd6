"""The publish pipeline: from a directory, an archive or an in-memory model to a catalog version.

Order matters: everything that can refuse a publish (format detection, the
matrix gate for create, the common-signature check of claimed tasks, plugins'
``inspect_version``) runs before anything is written, so a refused publish
leaves storage and catalog untouched. The artifact is uploaded before the
catalog row exists; a crash in between leaves only an unreferenced,
content-addressed blob.

A ``Publisher`` is given its collaborators (catalog, artifact store, cache,
resolver, adapters, task definitions, plugin hook) by the ``Registry``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from registry.errors import ArtifactNotFound, MetadataError, RegistryError
from registry.handles import SCHEME_RE, CatalogHandle, catalog_handle, parse, parse_model_name
from registry.modes import resolve_mode
from registry.resolver import ProgressFactory, no_progress
from registry.storage.archive import extract_stream, pack_directory, walk_model_directory
from registry.tasks.conformance import check_version

if TYPE_CHECKING:
    from registry.catalog.interface import CatalogBackend
    from registry.catalog.models import VersionMetadata, VersionPublic
    from registry.plugin_manager import AdapterSet
    from registry.resolver import Resolver
    from registry.storage.artifacts import ArtifactStorage
    from registry.storage.cache import ModelCache
    from registry.tasks.conformance import DefinitionSet


class Publisher:
    def __init__(self, *, catalog: "CatalogBackend", store: "ArtifactStorage", cache: "ModelCache",
                 resolver: "Resolver", adapters: "AdapterSet", definitions: "DefinitionSet", plugin_manager,
                 progress: ProgressFactory = no_progress):
        self.catalog = catalog
        self.store = store
        self.cache = cache
        self.resolver = resolver
        self.adapters = adapters
        self.definitions = definitions
        self.plugin_manager = plugin_manager
        self.progress = progress

    def publish(self, source: Any, *, name: str, metadata: "VersionMetadata | None" = None, parent: str | None = None,
                tasks: Iterable[str] = (), mode: str | None = None, idempotency_key: str | None = None,
                **create_options: Any) -> "VersionPublic":
        """Publish ``source`` as the next version of ``name``, saying ``metadata`` about it.

        The catalog receives one ``VersionCreate``: ``metadata``'s fields as they are, plus what
        was read from the artifact; ``create_options`` go to the adapter creating an in-memory model.
        """
        from registry.catalog.models import MAX_LISTED_FILES, VersionCreate, VersionMetadata, checked_idempotency_key

        metadata = metadata if metadata is not None else VersionMetadata()
        publisher, model = parse_model_name(name)
        try:
            checked_idempotency_key(idempotency_key)  # refused before any work, not after the upload to storage
        except ValueError as error:
            raise MetadataError(f"idempotency_key: {error}") from None
        parent_handle = parse_parent(parent)
        if parent_handle is not None:
            self.catalog.get_version(parent_handle)  # fail before any work if the parent is unknown
        tasks = list(dict.fromkeys(tasks))
        with self.cache.workdir() as work:
            model_dir, archive, extracted = self._materialize(source, work, mode, create_options)
            # A FIFO would hang the inspection or the packing; a link would not be packed: refuse now. The walk
            # also lists the files the version's record shows (path and size).
            files = sorted((rel, path.stat().st_size) for rel, path, is_dir in
                           walk_model_directory(model_dir, allow_symlinks=False) if not is_dir)
            metadata = with_directory_card(metadata, model_dir)
            adapter = self.adapters.detect(model_dir)
            info = adapter.inspect(model_dir)
            conformance = check_version(self.definitions, info, claimed=tasks)
            details = {**info.metadata, **conformance["details"],
                       **self._plugin_details(model_dir, info, adapter, tasks)}
            if archive is None:
                archive = work / "artifact.tar.gz"
                with open(archive, "wb") as out:
                    sha256, size = pack_directory(model_dir, out)
            else:
                sha256, size = extracted.sha256, extracted.size
            with self.progress(f"Storing {publisher}/{model}", size) as update:  # client mode says "Uploading"
                uri = self.store.put(archive, sha256, progress=update)
            record = self.catalog.create_version(VersionCreate.checked({
                **metadata.metadata_values(), "publisher": publisher, "name": model, "format": info.format,
                "artifact_uri": uri, "sha256": sha256, "size": size, "tag_sets": [sorted(t) for t in info.tag_sets],
                "files": [{"path": rel, "size": nbytes} for rel, nbytes in files[:MAX_LISTED_FILES]],
                "file_count": len(files),
                "signatures": list(info.signatures), "details": details,
                "parent": str(parent_handle) if parent_handle is not None else None, "tasks": conformance["tasks"],
                "idempotency_key": idempotency_key}))
            if extracted is not None:
                self.cache.add_extracted(model_dir, extracted, source=uri)
            else:
                self.cache.add_directory(model_dir, sha256=sha256, size=size, source=uri)
            return record

    def _materialize(self, source, work: Path, mode, create_options):
        """(model directory, archive file or None, ExtractResult or None) for any publishable source."""
        model_dir, archive = materialize(source, work, resolver=self.resolver, adapters=self.adapters, mode=mode,
                                         create_options=create_options)
        if archive is None:
            return model_dir, None, None
        target = work / "model"
        target.mkdir()
        with open(archive, "rb") as stream:
            extracted = extract_stream(stream, target, source=str(archive), compressions=("gzip",),
                                       limits=self.cache.limits)
        return target, archive, extracted

    def _plugin_details(self, model_dir, info, adapter, tasks) -> dict:
        """Ask every plugin's ``inspect_version``; merge the details they report (or let them refuse)."""
        details: dict = {}
        results = self.plugin_manager.hook.inspect_version(
            path=model_dir, info=info, adapter=adapter, claimed_tasks=tasks, plugin_manager=self.plugin_manager)
        for result in results:
            if not result:
                continue
            if not isinstance(result, dict):
                raise RegistryError(f"an inspect_version hook returned {type(result).__name__}, not a dict")
            details.update(result.get("details", {}))
            if result.get("tasks"):
                raise RegistryError("inspect_version hooks report details only; tasks come from the task "
                                    "definitions (register_signature_definitions)")
        return details


def materialize(source: Any, work: Path, *, resolver: "Resolver", adapters: "AdapterSet", mode: str | None,
                create_options: dict) -> tuple[Path | None, Path | None]:
    """A publishable source made local: ``(model directory, None)`` or ``(None, archive file)``.

    A URL is resolved (downloaded), a directory is used where it is, a file that an
    adapter claims as a whole model (``AdapterSet.claim_file``) is laid out by that
    adapter as a model directory under ``work/model``, any other file is an archive
    left packed (a local publish extracts it, client mode uploads it as it is), and
    an in-memory model is created under ``work/model`` once the matrix gate for
    "create" passes in the mode its adapter builds it in.
    """
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if SCHEME_RE.match(text) and not text.startswith("file://"):
            return resolver.resolve(parse(text)).path, None
        path = Path(os.path.expanduser(text[7:] if text.startswith("file://") else text)).absolute()
        if path.is_dir():
            return path, None
        if path.is_file():
            claimed = adapters.claim_file(path)
            if claimed is not None:
                claimed.from_file(path, work / "model")
                return work / "model", None
            return None, path
        raise ArtifactNotFound(f"nothing to publish at {path}: expected a model directory or a .tar.gz archive")
    adapter = adapters.for_object(source)
    mode = adapter.creation_mode(source, resolve_mode(mode))
    adapters.matrix.check(adapter.format, "create", mode)
    target = work / "model"
    adapter.create(source, target, mode=mode, **create_options)
    return target, None


#: The file of a model directory that is its card when the publish gives none (as on Hugging Face and GitHub).
CARD_FILE = "README.md"


def with_directory_card(metadata: "VersionMetadata", model_dir: Path) -> "VersionMetadata":
    """``metadata`` with the model directory's ``README.md`` as its card, unless it has a card already.

    The file stays in the artifact as it is; the card is the catalog's copy, editable later without
    touching the artifact. A README that is no UTF-8 text or is too long is a ``MetadataError`` saying so.
    """
    readme = model_dir / CARD_FILE
    if metadata.card is not None or not readme.is_file():
        return metadata
    try:
        text = readme.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MetadataError(f"{CARD_FILE} of the model directory is the version's card, but it is not UTF-8 text: "
                            f"convert it, or give a card with --card FILE (card=...)") from None
    try:
        return type(metadata).merged(metadata, {"card": text})
    except MetadataError as error:
        raise MetadataError(f"{CARD_FILE} of the model directory (the version's card): {error}") from None


def parse_parent(parent) -> CatalogHandle | None:
    if parent is None:
        return None
    if hasattr(parent, "handle"):  # a VersionPublic
        parent = parent.handle
    return catalog_handle(parent)
