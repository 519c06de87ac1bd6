"""Importing what a team kept from TF Hub and Kaggle: caches and archives, into the catalog, with their handles.

Three sources, each read into the same ``Found`` records: a ``TFHUB_CACHE_DIR`` (``registry.legacy.tfhub_cache``),
a kagglehub cache (``registry.legacy.kagglehub_cache``), and a folder of archives or model directories with a
CSV map naming each one's legacy handle (``read_map``). ``import_models`` publishes each through the ordinary
``Registry.publish`` (so a client-mode registry uploads through the server, and the adapters detect the format)
and returns one ``Outcome`` per entry: imported, already there, or refused with a one-line reason. One entry's
failure never stops the others.

Names are derived once, by ``derive_name`` (``NAME_RULE`` says how, and the CLI prints each result). A second run
adds nothing: an entry whose legacy handle the catalog already has is "already there" before anything is packed;
otherwise the model is packed (``pack_directory`` is deterministic, so the same files give the same sha256) and
a version of the derived model with that sha256 is the same version — its handle is added to it if missing. The
publish itself carries an idempotency key made of that sha256, so a retried upload cannot make a second one.

Version numbers: the catalog numbers a model's versions 1, 2, ... itself, so tfhub.dev's number is kept when the
catalog can — entries of one model are published in increasing legacy version, so a model imported whole from
version 1 gets the same numbers; where they differ (a gap, or a model already in the catalog) the outcome shows
both, and the legacy handle (which keeps its number) is what old code asks by.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Literal
from urllib.parse import urlsplit

from registry.errors import ArtifactError, CatalogError, HandleError, ModelNotFound, RegistryError

if TYPE_CHECKING:
    from registry.api import Registry

Status = Literal["imported", "already there", "refused"]
IMPORTED: Status = "imported"
ALREADY_THERE: Status = "already there"
REFUSED: Status = "refused"

NAME_RULE = ("catalog name = <publisher>/<model> from the handle's path: a tfhub.dev or bucket handle "
             "<publisher>/<a>/<b>/<N> gives <publisher>/<a>.<b>; a Kaggle or kagglehub handle "
             "<owner>/<model>/<framework>/<variation>/<N> gives <owner>/<model>.<framework>.<variation>; any other "
             "URL's path is read like tfhub.dev's (a one-part path takes the host as publisher); lower-cased, "
             "characters other than a-z 0-9 . _ - become '-'")
#: Where an unversioned handle (it meant "the newest") sorts among its model's versions: after them.
UNVERSIONED_LAST = 2**31
_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


@dataclass(frozen=True)
class Found:
    """One model an import source offers: where it is, the handle it was known by, or why it is unusable."""

    #: How the entry is shown (a cache entry's name, an archive's path).
    source: str
    #: The handle exactly as the source gives it (a descriptor's, a kagglehub handle, a map's); None if unknown.
    handle: str | None
    #: A model directory or an archive (``.tar.gz``); None when refused before it could be found.
    path: Path | None = None
    #: Why the entry cannot be imported (one line); None when it can be tried.
    refusal: str | None = None


@dataclass
class Outcome:
    """What happened to one ``Found``."""

    source: str
    handle: str | None
    status: Status
    #: The derived catalog name (``publisher/model``), when a handle gave one.
    name: str | None = None
    #: The catalog version (``publisher/model/N``) imported or found.
    version: str | None = None
    #: One line: why it was refused, or a note (a number that differs, a handle that is not a legacy one).
    reason: str | None = None
    #: The legacy handle recorded (canonical form), if any.
    recorded: list[str] = field(default_factory=list)


# -- names ------------------------------------------------------------------------------------------------------

def derive_name(handle: str) -> tuple[str, int | None]:
    """(catalog name, the handle's own version number or None) by ``NAME_RULE``; ``HandleError`` if it gives none."""
    from registry.legacy.handles import KAGGLE, TFHUB, is_legacy_handle, parse_legacy_handle

    if is_legacy_handle(handle):
        parsed = parse_legacy_handle(handle)
        segments = parsed.path.split("/")
        if parsed.family == TFHUB and len(segments) >= 2:
            return _name(segments[0], segments[1:]), parsed.version
        if parsed.family == KAGGLE:
            return _name(segments[0], segments[1:]), parsed.version
    parts = urlsplit(handle)
    segments = [segment for segment in parts.path.split("/") if segment]
    if not parts.scheme or not parts.netloc or not segments:
        raise HandleError(f"{handle!r} gives no catalog name: {NAME_RULE}")
    last = segments[-1]
    for suffix in _ARCHIVE_SUFFIXES:
        if last.endswith(suffix):
            segments[-1] = last = last[: -len(suffix)]
    version = None
    if last.isdigit() and len(segments) > 1:
        version = int(last)
        segments = segments[:-1]
    if len(segments) == 1:
        return _name(parts.hostname or "imported", segments), version
    return _name(segments[0], segments[1:]), version


def _name(publisher: str, rest: list[str]) -> str:
    def clean(text: str) -> str:
        cleaned = _UNSAFE.sub("-", text.lower()).strip("-")
        return cleaned.lstrip(".") or "x"

    return f"{clean(publisher)}/{clean('.'.join(rest))}"


def canonical_handle(handle: str | None) -> str | None:
    """The legacy handle to record for ``handle`` (its canonical form), or None when it is no legacy handle."""
    from registry.legacy.handles import is_legacy_handle, normalise_legacy_handle

    if handle is None or not is_legacy_handle(handle):
        return None
    return normalise_legacy_handle(handle)


# -- sources ----------------------------------------------------------------------------------------------------

def tfhub_cache_entries(cache_dir: str | os.PathLike) -> Iterator[Found]:
    """Every entry of a ``TFHUB_CACHE_DIR``: complete ones with their descriptor's handle, the others refused."""
    from registry.errors import CacheEntryRefused
    from registry.legacy import tfhub_cache

    root = tfhub_cache.cache_root(cache_dir)
    if not root.is_dir():
        raise ArtifactError(f"{root} is not a directory (a TFHUB_CACHE_DIR)")
    for name in tfhub_cache.entry_names(root):
        try:
            entry = tfhub_cache.read_entry(root, name)
        except CacheEntryRefused as error:
            yield Found(source=name, handle=None, refusal=tfhub_cache.REFUSALS.get(error.reason, str(error)))
        else:
            yield Found(source=name, handle=entry.handle, path=entry.path)


def kagglehub_cache_entries(cache_dir: str | os.PathLike) -> Iterator[Found]:
    """Every model version of a kagglehub cache: whole downloads, and the partial ones refused."""
    from registry.legacy import kagglehub_cache

    for entry in kagglehub_cache.scan(Path(cache_dir)):
        yield Found(source=f"models/{entry.handle}", handle=entry.handle, path=entry.path, refusal=entry.refusal)


def read_map(map_file: str | os.PathLike) -> list[tuple[str, str]]:
    """The rows of a CSV map: ``path,handle`` (an archive or model directory, relative to the imported folder,
    and its legacy handle); a first row ``path,handle`` and lines starting with ``#`` are skipped."""
    try:
        with open(map_file, newline="", encoding="utf-8") as stream:
            rows = list(csv.reader(stream))
    except (OSError, UnicodeDecodeError) as error:
        raise ArtifactError(f"cannot read the map {map_file}: {error}") from None
    found = []
    for number, row in enumerate(rows, 1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#") or (number == 1 and cells[:2] == ["path", "handle"]):
            continue
        if len(cells) != 2 or not all(cells):
            raise ArtifactError(f"{map_file}, line {number}: a row is 'path,handle' (an archive or directory, "
                                f"then its legacy handle), not {row!r}")
        found.append((cells[0], cells[1]))
    return found


def archive_entries(folder: str | os.PathLike, map_file: str | os.PathLike) -> Iterator[Found]:
    """One entry per row of the map; a row naming nothing under ``folder`` is refused."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"{folder} is not a directory")
    for rel, handle in read_map(map_file):
        path = folder / rel
        if not path.exists():
            yield Found(source=rel, handle=handle, refusal=f"{rel} does not exist in {folder}")
        elif path.is_dir() and not any(path.iterdir()):
            yield Found(source=rel, handle=handle, refusal=f"{rel} is an empty directory")
        else:
            yield Found(source=rel, handle=handle, path=path)


# -- importing --------------------------------------------------------------------------------------------------

def import_models(registry: "Registry", found: Iterable[Found], *,
                  progress: Callable[[int, int, Outcome], None] | None = None) -> list[Outcome]:
    """Publish every usable entry of ``found`` under its derived name, with its legacy handle; one ``Outcome`` each.

    Entries are taken by derived name and increasing legacy version (so tfhub.dev's numbers line up where they
    can); ``progress(i, n, outcome)`` is called after each.
    """
    entries = sorted(found, key=_order)
    outcomes = []
    for number, entry in enumerate(entries, 1):
        outcome = _import_one(registry, entry)
        outcomes.append(outcome)
        if progress is not None:
            progress(number, len(entries), outcome)
    return outcomes


def _order(entry: Found) -> tuple:
    try:
        name, version = derive_name(entry.handle) if entry.handle else ("", None)
    except HandleError:
        name, version = "", None
    return (name, version if version is not None else UNVERSIONED_LAST, entry.source)


def _import_one(registry: "Registry", entry: Found) -> Outcome:
    outcome = Outcome(source=entry.source, handle=entry.handle, status=REFUSED)
    if entry.refusal is not None:
        outcome.reason = entry.refusal
        return outcome
    try:
        if entry.handle is None or entry.path is None:
            raise HandleError("the entry names no handle")
        outcome.name, legacy_number = derive_name(entry.handle)
        recorded = canonical_handle(entry.handle)
        if recorded is not None:
            existing = registry.find_legacy_handle(recorded)
            if existing is not None and recorded in existing.legacy_handles:  # not merely the newest under it
                if existing.deleted:
                    raise CatalogError(f"the handle names {existing.handle}, which was deleted; remove it from that "
                                       f"version (model-registry handles remove) to import this one")
                outcome.status, outcome.version, outcome.recorded = ALREADY_THERE, existing.handle, [recorded]
                return outcome
        _publish(registry, entry, outcome, recorded)
        notes = []
        if recorded is None:
            notes.append("no legacy handle recorded (not a tfhub.dev or Kaggle handle)")
        number = int(outcome.version.rsplit("/", 1)[1]) if outcome.version else None
        if legacy_number is not None and number is not None and number != legacy_number:
            notes.append(f"catalog version {number} for the handle's version {legacy_number}")
        outcome.reason = "; ".join(notes) or None
    except (RegistryError, OSError) as error:
        outcome.status, outcome.reason = REFUSED, _one_line(error)
    return outcome


def _publish(registry: "Registry", entry: Found, outcome: Outcome, recorded: str | None) -> None:
    """Pack (or take) the model, and publish it unless a version of the derived model has its sha256."""
    from registry.storage.archive import file_digest, pack_directory

    assert entry.path is not None and outcome.name is not None
    with registry.cache.workdir() as work:
        if entry.path.is_dir():
            registry.adapters.detect(entry.path)  # an unreadable model is refused before packing it
            archive = work / "import.tar.gz"
            with open(archive, "wb") as out:
                sha256, _ = pack_directory(entry.path, out)
        else:
            archive = entry.path
            sha256 = file_digest(archive)["sha256"]
        handles = [recorded] if recorded else []
        same = _version_with_sha(registry, outcome.name, sha256)
        if same is not None:
            outcome.status, outcome.version, outcome.recorded = ALREADY_THERE, same, handles
            if recorded is not None:
                registry.add_legacy_handles(same, handles)
            return
        description = f"Imported from {entry.handle}"
        version = registry.publish(archive, name=outcome.name, legacy_handles=handles, description=description,
                                   idempotency_key=f"import-{sha256}")
        outcome.status, outcome.version, outcome.recorded = IMPORTED, version.handle, handles


def _version_with_sha(registry: "Registry", name: str, sha256: str) -> str | None:
    try:
        summaries = registry.version_summaries(name)
    except ModelNotFound:
        return None
    for summary in summaries:
        if summary.sha256 == sha256 and not summary.deleted:
            return f"{summary.publisher}/{summary.model}/{summary.version}"
    return None


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def summary_counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {IMPORTED: 0, ALREADY_THERE: 0, REFUSED: 0}
    for outcome in outcomes:
        counts[outcome.status] += 1
    return counts
