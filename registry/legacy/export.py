"""``export tfhub-cache``: a ``TFHUB_CACHE_DIR`` for machines with no network, written from the catalog.

For each tfhub.dev legacy handle of the chosen versions, the entry tensorflow_hub looks for under every
spelling code uses (``registry.legacy.handles.spellings``) and its descriptor. The model is stored once per
version: the first entry is a copy of the version's directory, every other spelling's entry a relative
symbolic link to it (tensorflow_hub 0.15 and 0.16.1 test an entry with ``gfile.Exists``/``ListDirectory``
and load it by path, all of which follow the link; a directory cannot be hard-linked). The links are
relative, so the folder can be copied or archived to another machine as a whole (``cp -a``, ``tar``).
Kaggle handles are left out: tensorflow_hub does not resolve them (kagglehub keeps its own cache).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, NamedTuple

from registry.errors import HandleError
from registry.legacy import tfhub_cache
from registry.legacy.handles import TFHUB, looks_legacy, parse_legacy_handle, spellings

if TYPE_CHECKING:
    from registry.api import Registry


class Exported(NamedTuple):
    """One legacy handle written: the version it names, and the entries (one per spelling) now in the cache."""

    legacy_handle: str
    version: str
    entries: int
    #: Why nothing was written for it (a Kaggle handle), or None.
    skipped: str | None = None


def chosen_versions(registry: "Registry", handles: Iterable[str], *, every: bool) -> list:
    """The versions to export: those ``handles`` name (catalog handles, or legacy handles), or with ``every`` each
    version that has a legacy handle. A legacy handle nothing records is a ``HandleError``."""
    handles = list(handles)
    if every == bool(handles):
        raise HandleError("name the versions to export (PUBLISHER/MODEL/N or a legacy handle), or --all, not both")
    if every:
        names = sorted(set(registry.list_legacy_handles().values()))
        return [registry.get_version(name) for name in names]
    versions = []
    for handle in handles:
        if looks_legacy(handle):
            found = registry.find_legacy_handle(handle)
            if found is None or found.deleted:
                raise HandleError(f"no live catalog version is named by {handle}; see model-registry handles list")
            versions.append(found)
        else:
            versions.append(registry.get_version(handle))
    unique = {version.handle: version for version in versions}
    return list(unique.values())


def export_tfhub_cache(registry: "Registry", directory: str | Path, versions: list) -> list[Exported]:
    """Write the entries of ``versions``' legacy handles into ``directory`` (created if needed; entries already
    complete there are kept). Each version is downloaded into the local cache first if it is not there."""
    root = tfhub_cache.cache_root(directory)
    root.mkdir(parents=True, exist_ok=True)
    done: list[Exported] = []
    for version in versions:
        tfhub = [legacy for legacy in version.legacy_handles if parse_legacy_handle(legacy).family == TFHUB]
        for legacy in version.legacy_handles:
            if legacy not in tfhub:
                done.append(Exported(legacy, version.handle, 0, "tensorflow_hub does not resolve Kaggle handles"))
        if not tfhub:
            continue
        model = registry.resolve_path(version.handle)
        first: Path | None = None
        for legacy in tfhub:
            written = 0
            for spelling in spellings(legacy):
                entry = tfhub_cache.write_entry(root, spelling, model, link_to=first)
                first = first or entry
                written += 1
            done.append(Exported(legacy, version.handle, written))
    return done
