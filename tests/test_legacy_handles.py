"""Legacy handles (tfhub.dev, its mirror and bucket, Kaggle URLs, kagglehub handles) in the catalog.

Normalised to one canonical form per family; recorded at publish and later, unique across the catalog,
in the version's record and audit log; through the Python API on SQLite and PostgreSQL, the CLI, and a
real server in client mode (publish scope), and shown on the version page.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from registry.api import Registry
from registry.cli import cli
from registry.errors import CatalogError, HandleError, LegacyHandleConflict, LegacyHandleError
from registry.legacy.handles import (
    is_legacy_handle,
    looks_legacy,
    normalise_legacy_handle,
    parse_legacy_handle,
    spellings,
)
from tests.conftest import REFERENCE_DIR
from tests.server_support import create_token

MODEL = REFERENCE_DIR / "tf2_text_embedding"
TF1 = REFERENCE_DIR / "tf1_text_embedding"
HUB = "https://tfhub.dev/google/nnlm-en-dim50/2"
BERT = "https://tfhub.dev/tensorflow/bert_en_uncased_L-12_H-768_A-12/4"
KAGGLE = "https://www.kaggle.com/models/google/nnlm/tensorflow2/en-dim50/2"


@pytest.mark.parametrize("spelling, canonical", [
    (HUB, HUB),
    ("http://tfhub.dev/google/nnlm-en-dim50/2", HUB),
    ("https://www.tfhub.dev/google/nnlm-en-dim50/2/", HUB),
    ("tfhub.dev/google/nnlm-en-dim50/2", HUB),
    ("  HTTPS://TFHub.dev/google/nnlm-en-dim50/2?tf-hub-format=compressed ", HUB),
    ("https://hub.tensorflow.google.cn/google/nnlm-en-dim50/2", HUB),
    ("https://storage.googleapis.com/tfhub-modules/google/nnlm-en-dim50/2.tar.gz", HUB),
    ("https://gcs.tensorflow.google.cn/tfhub-modules/google/nnlm-en-dim50/2.tar.gz", HUB),
    ("https://tfhub.dev/google/nnlm-en-dim50", "https://tfhub.dev/google/nnlm-en-dim50"),
    ("https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5/",
     "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5"),
    (BERT, BERT),  # tfhub.dev paths keep their case
    (KAGGLE, KAGGLE),
    ("https://kaggle.com/models/google/nnlm/tensorFlow2/en-dim50/2", KAGGLE),
    ("http://www.kaggle.com/models/google/nnlm/frameworks/TensorFlow2/variations/en-dim50/versions/2/", KAGGLE),
    ("google/nnlm/tensorflow2/en-dim50/2", KAGGLE),
    ("google/nnlm/tensorflow2/en-dim50", "https://www.kaggle.com/models/google/nnlm/tensorflow2/en-dim50"),
    ("https://www.kaggle.com/models/google/nnlm/frameworks/tensorFlow2/variations/en-dim50",
     "https://www.kaggle.com/models/google/nnlm/tensorflow2/en-dim50"),
])
def test_every_spelling_normalises_to_its_family_canonical_form(spelling, canonical):
    assert normalise_legacy_handle(spelling) == canonical
    assert is_legacy_handle(spelling)


@pytest.mark.parametrize("text", [
    "https://example.com/google/nnlm/2", "google/nnlm", "google/nnlm/2", "google/nnlm@prod", "/models/x",
    "https://storage.googleapis.com/my-bucket/model.tar.gz", "https://www.kaggle.com/datasets/a/b", "gs://b/x",
    "p/m/1/2", "google/nnlm/tf2/en",  # four parts, but no Kaggle framework: a mistyped catalog handle
])
def test_other_handles_and_urls_are_not_legacy(text):
    assert not is_legacy_handle(text) and not looks_legacy(text)


@pytest.mark.parametrize("text, why", [
    ("https://tfhub.dev/google", "publisher and a model"),
    ("https://tfhub.dev/google/nnlm/02", "leading zeros"),
    ("https://tfhub.dev/google/nnlm/2?format=x", "'format'"),
    ("https://tfhub.dev/google/nnlm/2#frag", "fragment"),
    ("https://user@tfhub.dev/google/nnlm/2", "user or a port"),
    ("https://tfhub.dev/google//nnlm/2", "not a name"),
    ("https://storage.googleapis.com/tfhub-modules/google/nnlm/latest.tar.gz", "named by its version"),
    ("https://www.kaggle.com/models/google/nnlm/tf2", "Kaggle model variation"),
    ("google/nnlm/tensorflow2/v?/1", "not a name"),
])
def test_a_malformed_legacy_handle_is_a_typed_error_saying_why(text, why):
    assert looks_legacy(text) and not is_legacy_handle(text)
    with pytest.raises(LegacyHandleError, match="not a valid legacy handle") as caught:
        normalise_legacy_handle(text)
    assert why in str(caught.value) and isinstance(caught.value, HandleError)


def test_spellings_are_the_ones_tensorflow_hub_code_uses():
    found = spellings("tfhub.dev/google/nnlm-en-dim50/2/")
    assert found[0] == HUB and len(found) == len(set(found))
    assert {HUB, HUB + "/", "http://tfhub.dev/google/nnlm-en-dim50/2", "https://www.tfhub.dev/google/nnlm-en-dim50/2/",
            "http://www.tfhub.dev/google/nnlm-en-dim50/2",
            "https://storage.googleapis.com/tfhub-modules/google/nnlm-en-dim50/2.tar.gz"} <= set(found)
    assert all(normalise_legacy_handle(spelling) == HUB for spelling in found)
    kaggle = spellings("google/nnlm/tensorflow2/en-dim50/2")
    assert kaggle[0] == KAGGLE and all(normalise_legacy_handle(spelling) == KAGGLE for spelling in kaggle)
    assert parse_legacy_handle(KAGGLE).kagglehub_handle == "google/nnlm/tensorflow2/en-dim50/2"


def _registry(database_url: str, tmp_path) -> Registry:
    return Registry(database_url=database_url, storage_url=str(tmp_path / "artifacts"), cache_dir=tmp_path / "cache")


def test_recorded_at_publish_and_later_unique_and_audited(database_url, tmp_path):
    registry = _registry(database_url, tmp_path)
    first = registry.publish(MODEL, name="google/nnlm", legacy_handles=["http://www.tfhub.dev/google/nnlm-en-dim50/2/"])
    assert first.legacy_handles == [HUB]
    second = registry.publish(TF1, name="google/nnlm")
    assert registry.find_legacy_handle("tfhub.dev/google/nnlm-en-dim50/2?tf-hub-format=compressed").handle == \
        first.handle
    assert registry.find_legacy_handle("https://tfhub.dev/google/nnlm-en-dim50/3") is None

    updated = registry.add_legacy_handles(second.handle, ["https://tfhub.dev/google/nnlm-en-dim50/3",
                                                          "google/nnlm/tensorflow2/en-dim50/1"])
    assert updated.legacy_handles == sorted(["https://tfhub.dev/google/nnlm-en-dim50/3",
                                             "https://www.kaggle.com/models/google/nnlm/tensorflow2/en-dim50/1"])
    assert registry.get_version(second.handle).legacy_handles == updated.legacy_handles
    # Unversioned: the version named by the highest legacy version number.
    assert registry.find_legacy_handle("https://tfhub.dev/google/nnlm-en-dim50").handle == second.handle
    assert registry.list_legacy_handles() == {
        HUB: first.handle, "https://tfhub.dev/google/nnlm-en-dim50/3": second.handle,
        "https://www.kaggle.com/models/google/nnlm/tensorflow2/en-dim50/1": second.handle}

    # Unique across the catalog: at publish (before any work) and later; nothing is added either way.
    with pytest.raises(LegacyHandleConflict, match="already names google/nnlm/1"):
        registry.publish(MODEL, name="other/model", legacy_handles=[HUB + "/"])
    with pytest.raises(LegacyHandleConflict, match="already names google/nnlm/1"):
        registry.add_legacy_handles(second.handle, ["https://tfhub.dev/google/x/1", HUB])
    assert registry.find_legacy_handle("https://tfhub.dev/google/x/1") is None
    assert isinstance(LegacyHandleConflict("m"), CatalogError)

    # Adding one a version already has changes nothing; removing one it does not have is refused.
    assert registry.add_legacy_handles(first.handle, [HUB]).legacy_handles == [HUB]
    with pytest.raises(CatalogError, match="is not named by"):
        registry.remove_legacy_handles(first.handle, ["https://tfhub.dev/google/nnlm-en-dim50/3"])
    assert registry.remove_legacy_handles(first.handle, [HUB]).legacy_handles == []
    assert registry.find_legacy_handle(HUB) is None
    with pytest.raises(LegacyHandleError):
        registry.add_legacy_handles(first.handle, ["https://tfhub.dev/nope"])

    actions = [(entry.action, entry.subject, entry.before, entry.after) for entry in
               registry.audit(action="legacy_handles.added")] + \
              [(entry.action, entry.subject, entry.before, entry.after) for entry in
               registry.audit(action="legacy_handles.removed")]
    assert ("legacy_handles.removed", first.handle, {"legacy_handles": [HUB]}, {"legacy_handles": []}) in actions
    assert [a for a in actions if a[0] == "legacy_handles.added"][0][1] == second.handle
    published = registry.audit(action="version.published", model="google/nnlm")
    assert [e.after.get("legacy_handles") for e in published if e.subject == first.handle] == [[HUB]]


def test_a_deleted_version_is_found_marked_deleted(database_url, tmp_path):
    registry = _registry(database_url, tmp_path)
    version = registry.publish(MODEL, name="google/nnlm", legacy_handles=[HUB])
    registry.delete_version(version.handle)
    found = registry.find_legacy_handle(HUB)
    assert found is not None and found.deleted and found.handle == version.handle
    assert registry.find_legacy_handle("https://tfhub.dev/google/nnlm-en-dim50") is None  # newest live: none


def test_the_cli(registry_env):
    runner = CliRunner()
    result = runner.invoke(cli, ["publish", str(MODEL), "--name", "google/nnlm", "--legacy-handle",
                                 "tfhub.dev/google/nnlm-en-dim50/2", "--legacy-handle",
                                 "https://storage.googleapis.com/tfhub-modules/google/nnlm-en-dim50/2.tar.gz"])
    assert result.exit_code == 0, result.output
    assert f"legacy:  {HUB}" in result.output and result.output.count("legacy:") == 1
    result = runner.invoke(cli, ["handles", "add", "google/nnlm/1", KAGGLE])
    assert result.exit_code == 0 and f"{KAGGLE} -> google/nnlm/1" in result.output
    result = runner.invoke(cli, ["--json", "handles", "list"])
    assert json.loads(result.output) == [{"legacy_handle": HUB, "version": "google/nnlm/1"},
                                         {"legacy_handle": KAGGLE, "version": "google/nnlm/1"}]
    result = runner.invoke(cli, ["handles", "list", "http://tfhub.dev/google/nnlm-en-dim50/2/"])
    assert result.exit_code == 0 and "google/nnlm/1" in result.output
    result = runner.invoke(cli, ["handles", "list", "https://tfhub.dev/google/unknown/1"])
    assert result.exit_code != 0 and "handles add" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["handles", "remove", "google/nnlm/1", KAGGLE])
    assert result.exit_code == 0 and f"removed {KAGGLE}" in result.output
    result = runner.invoke(cli, ["handles", "list", "google/nnlm/1"])
    assert HUB in result.output and KAGGLE not in result.output
    result = runner.invoke(cli, ["publish", str(MODEL), "--name", "x/y", "--legacy-handle", HUB])
    assert result.exit_code != 0 and "already names google/nnlm/1" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["handles", "add", "google/nnlm/1", "https://tfhub.dev/x"])
    assert result.exit_code != 0 and "not a valid legacy handle" in result.output


def test_in_client_mode_with_publish_scope_and_on_the_page(registry_server, tmp_path):
    server = registry_server
    client = Registry(server_url=server.url, token=create_token(server.env, "publisher", "publish"),
                      cache_dir=tmp_path / "cache")
    version = client.publish(MODEL, name="google/nnlm", legacy_handles=["http://tfhub.dev/google/nnlm-en-dim50/2"])
    assert version.legacy_handles == [HUB]
    assert client.find_legacy_handle("https://www.tfhub.dev/google/nnlm-en-dim50/2/").handle == version.handle
    assert client.find_legacy_handle("https://tfhub.dev/google/other/1") is None
    assert client.add_legacy_handles(version.handle, [KAGGLE]).legacy_handles == [HUB, KAGGLE]
    with pytest.raises(LegacyHandleConflict):
        client.publish(TF1, name="google/other", legacy_handles=[KAGGLE])
    assert client.list_legacy_handles() == {HUB: version.handle, KAGGLE: version.handle}
    assert client.remove_legacy_handles(version.handle, [KAGGLE]).legacy_handles == [HUB]

    reader = Registry(server_url=server.url, token=create_token(server.env, "reader", "read"),
                      cache_dir=tmp_path / "cache2")
    from registry.errors import AccessDenied

    with pytest.raises(AccessDenied):
        reader.add_legacy_handles(version.handle, [KAGGLE])
    bound = Registry(server_url=server.url, token=create_token(server.env, "elsewhere", "publish", "other"),
                     cache_dir=tmp_path / "cache3")
    with pytest.raises(AccessDenied):
        bound.add_legacy_handles(version.handle, [KAGGLE])

    status, body = server.json("GET", "/api/v1/models/google/nnlm/versions/1")
    assert status == 200 and body["legacy_handles"] == [HUB]
    status, _, page = server.request("GET", "/google/nnlm/1", headers={"Accept": "text/html"})
    assert status == 200 and 'id="legacy-handles"' in page.decode() and HUB in page.decode()
