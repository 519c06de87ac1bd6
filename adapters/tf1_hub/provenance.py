"""The record a converted model carries of what it was converted from, and its reading at publish time.

``convert_module`` writes it into the SavedModel's ``assets.extra/`` (the place a
SavedModel keeps files TensorFlow does not read); the plugin's ``inspect_version``
hook reads it when the directory is published, server-side in client mode too,
and records it as the version's ``details["converted_from"]``, which the
version's page shows. The authoritative link is the version's parent (lineage),
which ``Registry.convert`` sets; this record says how the two relate.

Imports neither TensorFlow nor any other module of this package but ``errors``.
"""

from __future__ import annotations

import json
from pathlib import Path

from registry.adapters.tf1_hub.errors import ConversionError

RECORD = Path("assets.extra") / "model_registry_conversion.json"
#: Bounds on a record read back: it comes from an uploaded directory, and becomes catalog data.
_MAX_BYTES = 64 * 1024
_MAX_LINES = 64


def write_record(model_dir: Path, *, source: str, format: str, summary: list[str]) -> None:
    """Write the record into the converted model directory ``model_dir``."""
    path = Path(model_dir) / RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"source": source, "format": format, "summary": summary}, indent=1) + "\n",
                    encoding="utf-8")


def read_record(model_dir: Path) -> dict | None:
    """The record of ``model_dir`` (``{"source", "format", "summary"}``), None without one.

    A record that is not what ``write_record`` writes refuses the publish
    (``ConversionError``): it would put nonsense on the version's page.
    """
    path = Path(model_dir) / RECORD
    if not path.is_file():
        return None
    problem = None
    if path.stat().st_size > _MAX_BYTES:
        problem = f"it is larger than {_MAX_BYTES} bytes"
    else:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            problem = f"it is not JSON ({error})"
        else:
            if not (isinstance(record, dict) and set(record) == {"source", "format", "summary"}
                    and isinstance(record["source"], str) and isinstance(record["format"], str)
                    and isinstance(record["summary"], list) and len(record["summary"]) <= _MAX_LINES
                    and all(isinstance(line, str) for line in record["summary"])):
                problem = 'it is not {"source": str, "format": str, "summary": [str, ...]}'
    if problem:
        raise ConversionError(f"{RECORD} (the record of what this model was converted from) is invalid: {problem}; "
                              f"remove it, or convert the model again")
    return record
