"""The publish pipeline: from a directory, an archive or an in-memory model to a catalog version.

Order matters: everything that can refuse a publish (format detection, the
matrix gate for create, plugins' checks such as claimed common signatures)
runs before anything is written, so a refused publish leaves storage and catalog
untouched. The artifact is uploaded before the catalog row exists; a crash in
between leaves only an unreferenced, content-addressed blob.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from registry.errors import ArtifactNotFound, HandleError, RegistryError
from registry.handles import SCHEME_RE, CatalogHandle, parse, parse_model_name
from registry.modes import resolve_mode
from registry.storage.archive import extract_stream, pack_directory

if TYPE_CHECKING:
    from registry.api import Registry
    from registry.catalog.models import VersionPublic


def publish(registry: "Registry", source: Any, *, name: str, description: str = "", parent: str | None = None,
            tasks: Iterable[str] = (), mode: str | None = None, **create_options: Any) -> "VersionPublic":
    publisher, model = parse_model_name(name)
    parent_handle = _parse_parent(parent)
    if parent_handle is not None:
        registry.catalog.get_version(parent_handle)  # fail before any work if the parent is unknown
    tasks = list(dict.fromkeys(tasks))
    work = registry.cache.new_workdir()
    try:
        model_dir, archive, extracted = _materialize(registry, source, work, mode, create_options)
        adapter = registry.adapters.detect(model_dir)
        info = adapter.inspect(model_dir)
        facts = _plugin_facts(registry, model_dir, info, adapter, tasks)
        if archive is None:
            archive = work / "artifact.tar.gz"
            with open(archive, "wb") as out:
                sha256, size = pack_directory(model_dir, out)
        else:
            sha256, size = extracted.sha256, extracted.size
        with registry.progress(f"Uploading {publisher}/{model}", size) as update:
            uri = registry.store.put(archive, sha256, progress=update)
        record = registry.catalog.create_version(
            publisher=publisher, name=model, format=info.format, artifact_uri=uri, sha256=sha256, size=size,
            tag_sets=[sorted(t) for t in info.tag_sets], signatures=list(info.signatures),
            details={**info.metadata, **facts["details"]}, description=description,
            parent=parent_handle, tasks=facts["tasks"])
        if extracted is not None:
            registry.cache.add_extracted(model_dir, extracted, source=uri)
        else:
            registry.cache.add_directory(model_dir, sha256=sha256, size=size, source=uri)
        return record
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _parse_parent(parent) -> CatalogHandle | None:
    if parent is None:
        return None
    if hasattr(parent, "handle"):  # a VersionPublic
        parent = parent.handle
    handle = parse(parent)
    if not isinstance(handle, CatalogHandle):
        raise HandleError(f"parent must be a catalog handle like 'publisher/model/3', not {parent!r}")
    return handle


def _materialize(registry, source, work: Path, mode, create_options):
    """(model directory, archive file or None, ExtractResult or None) for any publishable source."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if SCHEME_RE.match(text) and not text.startswith("file://"):
            return registry.resolve_path(text), None, None
        path = Path(os.path.expanduser(text[7:] if text.startswith("file://") else text)).absolute()
        if path.is_dir():
            return path, None, None
        if path.is_file():
            target = work / "model"
            target.mkdir()
            with open(path, "rb") as stream:
                extracted = extract_stream(stream, target, source=str(path))
            return target, path, extracted
        raise ArtifactNotFound(f"nothing to publish at {path}: expected a model directory or a .tar.gz archive")
    mode = resolve_mode(mode)
    adapter = registry.adapters.for_object(source)
    registry.check(adapter.format, "create", mode)
    target = work / "model"
    adapter.create(source, target, mode=mode, **create_options)
    return target, None, None


def _plugin_facts(registry, model_dir, info, adapter, tasks) -> dict:
    """Ask every plugin's ``inspect_version``; merge the details and tasks they report."""
    facts = {"details": {}, "tasks": []}
    results = registry.plugin_manager.hook.inspect_version(
        path=model_dir, info=info, adapter=adapter, claimed_tasks=tasks, plugin_manager=registry.plugin_manager)
    for result in results:
        if not result:
            continue
        if not isinstance(result, dict):
            raise RegistryError(f"an inspect_version hook returned {type(result).__name__}, not a dict")
        facts["details"].update(result.get("details", {}))
        facts["tasks"] += list(result.get("tasks", []))
    return facts
