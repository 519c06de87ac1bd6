"""Reading a ``gs://`` artifact without credentials needs no gcsfs: one GET of its media link (the GCS emulator).

A fresh process that resolves a catalog handle whose artifact is in the bucket must not pay
for importing gcsfs (aiohttp, google-auth, the storage client: ~0.6 s, more than a 50 MB
download) when there is nothing to authenticate; with an option only gcsfs understands, gcsfs
reads it as before. Either way the bytes arrive intact, and a missing object is a typed error.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import fsspec
import pytest

import registry
from tests.conftest import REFERENCE_DIR

pytestmark = pytest.mark.gcs

ARCHIVE = REFERENCE_DIR / "tf2_text_embedding.tar.gz"
READ = """
import hashlib, json, sys
from registry.storage import remote
try:
    with remote.open_stream(sys.argv[1]) as stream:
        digest = hashlib.sha256(stream.read()).hexdigest()
    print(json.dumps({"sha256": digest, "gcsfs": "gcsfs" in sys.modules}))
except Exception as error:
    print(json.dumps({"error": type(error).__name__, "message": str(error), "gcsfs": "gcsfs" in sys.modules}))
"""


@pytest.fixture
def stored(gcs_bucket) -> str:
    uri = f"{gcs_bucket}/sha256/archive.tar.gz"
    fsspec.filesystem("gs").put(str(ARCHIVE), uri.removeprefix("gs://"))
    return uri


def _read(uri: str, **env: str | None) -> dict:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **env}
    environ = {name: value for name, value in environ.items() if value is not None}
    done = subprocess.run([sys.executable, "-c", READ, uri], env=environ, capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_anonymous_read_is_one_get_without_gcsfs(stored):
    expected = hashlib.sha256(ARCHIVE.read_bytes()).hexdigest()
    assert _read(stored) == {"sha256": expected, "gcsfs": False}  # the session's FSSPEC_GCS_TOKEN=anon
    # An emulator with no token given: gcsfs would fall back to anonymous, and so does this.
    assert _read(stored, FSSPEC_GCS_TOKEN=None) == {"sha256": expected, "gcsfs": False}


def test_an_option_only_gcsfs_knows_goes_through_gcsfs(stored):
    expected = hashlib.sha256(ARCHIVE.read_bytes()).hexdigest()
    assert _read(stored, FSSPEC_GCS_CACHE_TIMEOUT="0") == {"sha256": expected, "gcsfs": True}


def test_a_missing_object_is_a_typed_error_naming_the_gs_url(gcs_bucket):
    missing = f"{gcs_bucket}/sha256/missing.tar.gz"
    found = _read(missing)
    assert found["error"] == "ArtifactNotFound" and missing in found["message"] and not found["gcsfs"]
    with pytest.raises(registry.ArtifactNotFound):
        from registry.storage import remote

        with remote.open_stream(missing):
            pass
