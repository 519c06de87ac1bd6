"""kagglehub's model cache, as kagglehub 1.0.3 writes it (``kagglehub/cache.py``), read for ``import kagglehub-cache``.

A whole-model download of ``<owner>/<model>/<framework>/<variation>/<version>`` lands in
``<cache>/models/<owner>/<model>/<framework>/<variation>/<version>/`` (the cache is ``KAGGLEHUB_CACHE``,
default ``~/.cache/kagglehub``). kagglehub touches ``<variation>/<version>.complete`` only after the last
file is written (and, for a download of more than 25 files, after ``<version>.archive`` was extracted and
deleted); it reuses an entry only when that marker exists. So an entry is whole exactly when its marker is
there, and the importer refuses the others with the reason kagglehub itself would have re-downloaded them:

- no marker and a ``<version>.archive`` beside the directory: the archive download or its extraction was cut;
- no marker but markers under ``<variation>/.complete/<version>/``: only single files were fetched
  (``model_download(handle, path=...)``), never the whole model;
- no marker otherwise: the download did not finish;
- a marker over an empty or missing directory: nothing to import.

Nothing here imports TensorFlow or touches the network; the format of a whole entry is the adapters' call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from registry.errors import ArtifactError

#: kagglehub's sub-folder for models inside its cache (``kagglehub.cache.MODELS_CACHE_SUBFOLDER``).
MODELS_FOLDER = "models"
#: The suffix of a whole download's completion marker, beside the version directory.
COMPLETE_SUFFIX = ".complete"
#: The suffix of an archive kagglehub downloads before extracting it (deleted once extracted).
ARCHIVE_SUFFIX = ".archive"
#: The folder of single-file completion markers (``kagglehub.cache.FILE_COMPLETION_MARKER_FOLDER``).
FILE_MARKERS_FOLDER = ".complete"


@dataclass(frozen=True)
class KagglehubEntry:
    """One ``<owner>/<model>/<framework>/<variation>/<version>`` found in a kagglehub cache."""

    #: The kagglehub handle, ``owner/model/framework/variation/version``, as kagglehub spells it.
    handle: str
    #: The version directory (it may be missing when only a marker or an archive is left).
    path: Path
    #: Why the entry cannot be imported, in one line; None for a whole download.
    refusal: str | None = None


def models_root(cache_dir: Path) -> Path:
    """The ``models`` folder of a kagglehub cache given as the cache itself or as its ``models`` folder."""
    cache_dir = Path(cache_dir).expanduser()
    if not cache_dir.is_dir():
        raise ArtifactError(f"{cache_dir} is not a directory (a kagglehub cache is KAGGLEHUB_CACHE, by default "
                            f"~/.cache/kagglehub)")
    if (cache_dir / MODELS_FOLDER).is_dir():
        return cache_dir / MODELS_FOLDER
    if cache_dir.name == MODELS_FOLDER:
        return cache_dir
    raise ArtifactError(f"{cache_dir} is not a kagglehub cache: it has no '{MODELS_FOLDER}' folder (kagglehub "
                        f"writes models to <cache>/{MODELS_FOLDER}/<owner>/<model>/<framework>/<variation>/<version>)")


def scan(cache_dir: Path) -> Iterator[KagglehubEntry]:
    """Every model version the cache holds or started to hold, whole or refused, in a stable order."""
    root = models_root(cache_dir)
    for variation_dir in _dirs_at_depth(root, 4):
        owner, model, framework, variation = variation_dir.relative_to(root).parts
        for version in _versions(variation_dir):
            handle = f"{owner}/{model}/{framework}/{variation}/{version}"
            path = variation_dir / str(version)
            yield KagglehubEntry(handle=handle, path=path, refusal=_refusal(variation_dir, version))


def _dirs_at_depth(root: Path, depth: int) -> list[Path]:
    level = [root]
    for _ in range(depth):
        level = sorted(child for parent in level for child in _subdirs(parent))
    return level


def _subdirs(path: Path) -> list[Path]:
    try:
        return [child for child in path.iterdir() if child.is_dir() and not child.name.startswith(".")]
    except OSError:
        return []


def _versions(variation_dir: Path) -> list[int]:
    """The version numbers anything in ``variation_dir`` names: directories, markers, leftover archives."""
    found: set[int] = set()
    try:
        names = os.listdir(variation_dir)
    except OSError:
        return []
    for name in names:
        stem = name
        for suffix in (COMPLETE_SUFFIX, ARCHIVE_SUFFIX):
            if name.endswith(suffix):
                stem = name[: -len(suffix)]
        if stem.isdigit() and int(stem) > 0:
            found.add(int(stem))
    markers = variation_dir / FILE_MARKERS_FOLDER
    if markers.is_dir():
        found.update(int(name) for name in os.listdir(markers) if name.isdigit() and int(name) > 0)
    return sorted(found)


def _refusal(variation_dir: Path, version: int) -> str | None:
    path = variation_dir / str(version)
    marker = variation_dir / f"{version}{COMPLETE_SUFFIX}"
    if not marker.is_file():
        if (variation_dir / f"{version}{ARCHIVE_SUFFIX}").exists():
            return (f"partial download: {version}{ARCHIVE_SUFFIX} is still there and {version}{COMPLETE_SUFFIX} "
                    f"is not (kagglehub stopped before extracting it)")
        if (variation_dir / FILE_MARKERS_FOLDER / str(version)).is_dir():
            return "only single files were downloaded (model_download with path=), not the whole model"
        return f"partial download: no {version}{COMPLETE_SUFFIX} marker (kagglehub did not finish it)"
    if not path.is_dir():
        return f"{version}{COMPLETE_SUFFIX} is there but the directory {version}/ is not"
    if not any(path.iterdir()):
        return f"the directory {version}/ is empty"
    return None
