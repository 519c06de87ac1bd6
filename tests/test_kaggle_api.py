"""Unmodified kagglehub downloads catalogued models from the server, as if from Kaggle.

kagglehub 1.0.3 with kagglesdk 0.1.38 (their own venv, ``tests/refstack.py``) always calls
``https://api.kaggle.com/v1/models.ModelApiService/...``. Each run puts ``model-registry serve`` and the client
in a private network and mount namespace (``tests/legacy_hosts.py``): there ``api.kaggle.com`` is 127.0.0.1 in
a bind-mounted hosts file, the server listens with TLS on port 443 under a certificate from a test CA, and
kagglehub trusts that CA through ``REQUESTS_CA_BUNDLE``. Nothing leaves the namespace.

The catalog is prepared beforehand with the CLI (publish with a Kaggle legacy handle); the files kagglehub
writes must be byte-identical to the published model's. The kagglehub cache those downloads leave behind is
then imported with ``model-registry import kagglehub-cache`` into another catalog.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REFERENCE_DIR
from tests.legacy_hosts import CertificateAuthority, run_behind_legacy_hosts
from tests.refstack import ensure_kagglehub
from tests.server_support import cli, server_environ

pytestmark = [pytest.mark.refstack, pytest.mark.slow]

EMBED = "google/tiny-embed/tensorFlow2/en"
WIDE = "google/tiny-wide/tensorFlow2/many-files"

DOWNLOAD = '''
import json, sys
import kagglehub
from kagglesdk.kaggle_client import KaggleClient
result = {"version": kagglehub.__version__, "paths": {}}
for handle in sys.argv[1:]:
    handle, _, path = handle.partition("::")
    result["paths"][handle + (f"::{path}" if path else "")] = kagglehub.model_download(handle, path or None)
try:
    kagglehub.model_download("google/not-catalogued/tensorFlow2/x/1")
except Exception as error:
    result["missing"] = [type(error).__name__, str(error)]
try:
    with KaggleClient() as client:
        client.models.model_api_client.list_models()
except Exception as error:
    result["unimplemented"] = [type(error).__name__, str(error), error.response.status_code,
                               error.response.json()]
print("RESULT " + json.dumps(result))
'''

def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def kaggle_world(tmp_path):
    """A catalog with two models carrying Kaggle handles, and a runner of kagglehub against it in a namespace."""
    client_python = ensure_kagglehub()
    env = server_environ(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "store"),
                         cache_dir=tmp_path / "server-cache")
    cli("db", "upgrade", env=env)
    embed = REFERENCE_DIR / "tf2_text_embedding"
    cli("publish", str(REFERENCE_DIR / "tf1_text_embedding"), "--name", "team/tiny-embed", env=env)
    cli("publish", str(embed), "--name", "team/tiny-embed", env=env)
    cli("handles", "add", "team/tiny-embed/1", f"{EMBED}/1", env=env)
    cli("handles", "add", "team/tiny-embed/2", f"{EMBED}/3", env=env)
    wide = tmp_path / "wide"  # more files than kagglehub fetches one by one (25): it asks for the archive
    shutil.copytree(embed, wide)
    for number in range(30):
        (wide / "assets" / f"extra-{number:02d}.txt").write_text(f"asset {number}\n")
    cli("publish", str(wide), "--name", "team/tiny-wide", env=env)
    cli("handles", "add", "team/tiny-wide/1", f"{WIDE}/2", env=env)
    ca = CertificateAuthority.create(tmp_path / "tls")
    home = tmp_path / "home"  # no ~/.kaggle credentials: kagglehub downloads public models anonymously
    home.mkdir()
    runs = iter(range(100))

    def run(*handles: str, extra_env: dict | None = None) -> tuple[dict, str]:
        client_env = {k: v for k, v in os.environ.items()
                      if not k.startswith(("MODEL_REGISTRY_", "KAGGLE", "PYTHON", "VIRTUAL_ENV"))}
        client_env.update({"KAGGLEHUB_CACHE": str(tmp_path / "kagglehub"), "HOME": str(home), **(extra_env or {})})
        done = run_behind_legacy_hosts([str(client_python), "-c", textwrap.dedent(DOWNLOAD), *handles],
                                       server_env=env, root=tmp_path / f"run-{next(runs)}", client_env=client_env,
                                       ca=ca)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert lines, done.stdout[-3000:] + done.stderr[-3000:] + done.server_log[-3000:]
        return json.loads(lines[-1][len("RESULT "):]), done.server_log

    return {"run": run, "env": env, "embed": embed, "wide": wide, "cache": tmp_path / "kagglehub", "home": home}


def test_kagglehub_downloads_catalogued_models(kaggle_world):
    one_file = f"{EMBED}/3::variables/variables.index"
    result, log = kaggle_world["run"](f"{EMBED}/1", EMBED, f"{WIDE}/2", one_file)
    assert result["version"] == "1.0.3"
    # Few files: each fetched by itself through the redirect; many: the version's archive at its model URL.
    assert '"GET /kaggle/files/team/tiny-embed/1/saved_model.pb' in log, log[-3000:]
    assert '"GET /team/tiny-wide/1?tf-hub-format=compressed' in log
    assert "/kaggle/files/team/tiny-wide/" not in log
    cache = kaggle_world["cache"]
    paths = result["paths"]
    # A version by its Kaggle number (1: the catalog's team/tiny-embed/1), as kagglehub lays out its cache.
    assert paths[f"{EMBED}/1"] == str(cache / "models" / EMBED / "1")
    assert _tree(Path(paths[f"{EMBED}/1"])) == _tree(REFERENCE_DIR / "tf1_text_embedding")
    # No version: the newest Kaggle version catalogued (3, the catalog's team/tiny-embed/2).
    assert paths[EMBED] == str(cache / "models" / EMBED / "3")
    assert _tree(Path(paths[EMBED])) == _tree(kaggle_world["embed"])
    # More than 25 files: the archive, extracted by kagglehub.
    assert _tree(Path(paths[f"{WIDE}/2"])) == _tree(kaggle_world["wide"])
    assert (cache / "models" / WIDE / "2.complete").is_file() and not (cache / "models" / WIDE / "2.archive").exists()
    # One file by its path (model_download(handle, path)): that file alone.
    assert '"GET /kaggle/files/team/tiny-embed/2/variables/variables.index' in log
    assert Path(paths[one_file]).read_bytes() == (kaggle_world["embed"] / "variables" / "variables.index").read_bytes()
    name, message = result["missing"]
    assert name == "KaggleApiHTTPError" and "404 Client Error" in message and "Resource not found" in message
    name, message, status, body = result["unimplemented"]
    assert status == 501 and body["code"] == 501 and "ListModels" in body["message"]
    assert "GetModelInstance" in message


def test_a_read_token_is_kaggles_api_token(kaggle_world):
    from tests.server_support import create_token

    env = kaggle_world["env"]
    env["MODEL_REGISTRY_REQUIRE_READ_TOKEN"] = "1"
    token = create_token(env, "kaggle-reader", "read")
    result, _ = kaggle_world["run"](f"{EMBED}/3", extra_env={"KAGGLE_API_TOKEN": token})
    assert _tree(Path(result["paths"][f"{EMBED}/3"])) == _tree(kaggle_world["embed"])
    with pytest.raises(AssertionError, match="401"):
        kaggle_world["run"](f"{EMBED}/1")


def test_import_the_cache_kagglehub_left(kaggle_world, tmp_path):
    kaggle_world["run"](f"{EMBED}/1", f"{EMBED}/3")
    cache = kaggle_world["cache"]
    variation = cache / "models" / EMBED
    # A download cut short beside them: its archive left and no completion marker.
    shutil.copytree(variation / "1", variation / "4")
    (variation / "4.archive").write_bytes(b"\x1f\x8b partial")
    target = server_environ(database_url=f"sqlite:///{tmp_path / 'other.db'}", storage_url=str(tmp_path / "o"),
                            cache_dir=tmp_path / "other-cache")
    cli("db", "upgrade", env=target)
    done = cli("import", "kagglehub-cache", str(cache), "--json", env=target, check=False, timeout=600)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    imported = {o["version"]: o["recorded"] for o in report["outcomes"] if o["status"] == "imported"}
    long_form = "https://www.kaggle.com/models/google/tiny-embed/tensorflow2/en"
    assert imported == {"google/tiny-embed.tensorflow2.en/1": [f"{long_form}/1"],
                        "google/tiny-embed.tensorflow2.en/2": [f"{long_form}/3"]}, report
    refused = [o for o in report["outcomes"] if o["status"] == "refused"]
    assert len(refused) == 1 and "4.archive" in refused[0]["reason"]
    again = json.loads(cli("import", "kagglehub-cache", str(cache), "--json", env=target, check=False,
                           timeout=600).stdout)
    assert again["counts"] == {"imported": 0, "already there": 2, "refused": 1}


# -- the API's edges, asked directly (the application in process, over a real SQLite catalog) -------------------

@pytest.fixture
def api(tmp_path):
    from fastapi.testclient import TestClient

    from registry.api import Registry
    from registry.server.app import create_app
    from registry.server.settings import ServerSettings

    registry = Registry(database_url=f"sqlite:///{tmp_path / 'catalog.db'}", storage_url=str(tmp_path / "store"),
                        cache_dir=tmp_path / "cache")
    registry.publish(REFERENCE_DIR / "tf2_text_embedding", name="team/tiny-embed",
                     legacy_handles=[f"{EMBED}/3"])
    registry.publish(REFERENCE_DIR / "tf1_text_embedding", name="team/tiny-embed", legacy_handles=[f"{EMBED}/5"])
    registry.delete_version("team/tiny-embed/2")
    with TestClient(create_app(registry, ServerSettings()), base_url="https://api.kaggle.com") as client:
        yield client


def _call(client, method: str, **body):
    fields = {"ownerSlug": "google", "modelSlug": "tiny-embed", "framework": "MODEL_FRAMEWORK_TENSOR_FLOW_2",
              "instanceSlug": "en", **body}
    return client.post(f"/v1/models.ModelApiService/{method}", json=fields, follow_redirects=False)


def test_the_newest_is_the_highest_kaggle_version_still_there(api):
    answer = _call(api, "GetModelInstance")
    assert answer.status_code == 200 and answer.json()["versionNumber"] == 3, answer.text  # 5 was deleted


def test_file_pages_follow_the_page_token(api):
    expected = sorted(p.relative_to(REFERENCE_DIR / "tf2_text_embedding").as_posix()
                      for p in (REFERENCE_DIR / "tf2_text_embedding").rglob("*") if p.is_file())
    names, token, pages = [], "", 0
    while True:
        answer = _call(api, "ListModelInstanceVersionFiles", versionNumber=3, pageSize=2,
                       **({"pageToken": token} if token else {}))
        assert answer.status_code == 200, answer.text
        names += [f["name"] for f in answer.json()["files"]]
        token, pages = answer.json()["nextPageToken"], pages + 1
        if not token:
            break
    assert sorted(names) == expected and len(set(names)) == len(names) and pages == (len(expected) + 1) // 2


def test_a_file_comes_with_the_md5_kagglehub_checks(api):
    import base64
    import hashlib

    answer = _call(api, "DownloadModelInstanceVersion", versionNumber=3, path="saved_model.pb")
    assert answer.status_code == 302 and answer.headers["location"] == "/kaggle/files/team/tiny-embed/1/saved_model.pb"
    got = api.get(answer.headers["location"])
    data = (REFERENCE_DIR / "tf2_text_embedding" / "saved_model.pb").read_bytes()
    assert got.status_code == 200 and got.content == data
    assert got.headers["x-goog-hash"] == "md5=" + base64.b64encode(hashlib.md5(data).digest()).decode()
    archive = _call(api, "DownloadModelInstanceVersion", versionNumber=3)
    assert archive.status_code == 302 and archive.headers["location"] == "/team/tiny-embed/1?tf-hub-format=compressed"


@pytest.mark.parametrize("method, body, status, words", [
    ("ListModelInstanceVersionFiles", {"versionNumber": 4}, 404, "tiny-embed/tensorFlow2/en/4"),
    ("ListModelInstanceVersionFiles", {"versionNumber": 5}, 404, "team/tiny-embed/2, which was deleted"),
    ("GetModelInstance", {"modelSlug": "other"}, 404, "no version"),
    ("GetModelInstance", {"framework": "MODEL_FRAMEWORK_UNSPECIFIED"}, 400, "framework"),
    ("GetModelInstance", {"framework": "PYTORCH"}, 400, "framework"),
    ("ListModelInstanceVersionFiles", {"versionNumber": "3"}, 400, "versionNumber"),
    ("ListModelInstanceVersionFiles", {"versionNumber": 3, "pageToken": "x"}, 400, "pageToken"),
    ("DownloadModelInstanceVersion", {"versionNumber": 3, "path": "../../catalog.db"}, 400, "inside the model"),
    ("DownloadModelInstanceVersion", {"versionNumber": 3, "path": "nope.pb"}, 404, "no file"),
    ("ListModels", {}, 501, "GetModelInstance"),
])
def test_refusals_come_in_the_sdks_shape(api, method, body, status, words):
    answer = _call(api, method, **body)
    assert answer.status_code == status and answer.json()["code"] == status, answer.text
    assert set(answer.json()) == {"code", "message"} and words in answer.json()["message"]


def test_a_body_that_is_no_json_object_is_refused_in_the_sdks_shape(api):
    for content in (b"not json", b"[1, 2]"):
        answer = api.post("/v1/models.ModelApiService/GetModelInstance", content=content,
                          headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and answer.json() == {
            "code": 400, "message": "the request body must be a JSON object (kagglesdk sends one)"}
    assert api.get("/kaggle/files/team/tiny-embed/1/../../../etc/passwd").status_code in (400, 404)
