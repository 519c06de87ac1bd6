"""The server answers the legacy URL shapes (``registry/server/legacy_urls.py``) on a real ``model-registry
serve``: tfhub.dev paths (catalog names first), the bucket form, Kaggle pages and downloads; archives are the
published bytes and are counted; pages for browsers; unknown handles are the 404 they always were, a
download of one says how to record it; reading rules as for catalog URLs. And client mode: a legacy handle
found through the server once loads offline afterwards. (The unmodified hub clients over TLS under the real
host names: ``tests/test_legacy_tfhub.py``.)
"""

from __future__ import annotations

import pytest

from registry.api import Registry
from registry.catalog.database import DatabaseCatalog
from registry.errors import OfflineError
from tests.conftest import REFERENCE_DIR
from tests.server_support import create_token

ARCHIVE = (REFERENCE_DIR / "tf2_text_embedding.tar.gz").read_bytes()
OTHER = (REFERENCE_DIR / "tf1_text_embedding.tar.gz").read_bytes()
HTML = {"Accept": "text/html"}
LEGACY = ["https://tfhub.dev/google/nnlm-en-dim50/2", "https://tfhub.dev/tensorflow/bert_en_uncased_L-12_H-768_A-12/4",
          "https://tfhub.dev/google/imagenet/mobilenet_v2/feature_vector/5",
          "https://www.kaggle.com/models/google/nnlm/tensorflow2/en-dim50/2"]


@pytest.fixture
def served(registry_server):
    server = registry_server
    status, body = server.publish("text/embed", ARCHIVE, legacy_handles=LEGACY)
    assert status == 201 and body["legacy_handles"] == sorted(LEGACY), body
    status, body = server.publish("google/nnlm-en-dim50", OTHER)  # a catalog name spelling a tfhub.dev path
    assert status == 201, body
    return server


@pytest.mark.parametrize("path", [
    "/google/nnlm-en-dim50/2?tf-hub-format=compressed",  # /{publisher}/{model}/{N}: no such catalog version
    "/google/nnlm-en-dim50/2/?tf-hub-format=compressed",
    "/tensorflow/bert_en_uncased_L-12_H-768_A-12/4?tf-hub-format=compressed",  # no valid catalog name
    "/tensorflow/bert_en_uncased_L-12_H-768_A-12?tf-hub-format=compressed",  # unversioned: the newest
    "/google/imagenet/mobilenet_v2/feature_vector/5?tf-hub-format=compressed",
    "/tfhub-modules/google/nnlm-en-dim50/2.tar.gz",
    "/tfhub-modules/google/nnlm-en-dim50/2.tar.gz?tf-hub-format=compressed",
    "/models/google/nnlm/tensorflow2/en-dim50/2/download",
    "/models/google/nnlm/frameworks/tensorFlow2/variations/en-dim50/versions/2?tf-hub-format=compressed",
    "/api/v1/models/google/nnlm/tensorflow2/en-dim50/2/download",
])
def test_every_download_shape_answers_the_published_archive(served, path):
    status, headers, body = served.request("GET", path)
    assert status == 200 and body == ARCHIVE, (path, status, body[:300])
    assert {k.lower(): v for k, v in headers.items()}["x-model-handle"] == "text/embed/1"


def test_pages_catalog_names_first_counting_and_refusals(served):
    # A catalog name wins: google/nnlm-en-dim50/1 is the catalog's own version.
    status, _, body = served.request("GET", "/google/nnlm-en-dim50/1?tf-hub-format=compressed")
    assert status == 200 and body == OTHER
    # Browsers get the version's page, which lists its legacy handles.
    for path in ("/google/nnlm-en-dim50/2", "/google/imagenet/mobilenet_v2/feature_vector/5",
                 "/models/google/nnlm/tensorFlow2/en-dim50/2"):
        status, _, page = served.request("GET", path, headers=HTML)
        text = page.decode()
        assert status == 200 and "text/embed" in text and 'id="legacy-handles"' in text, path
    # Unknown: a page is the 404 it always was; a download says how to record the handle.
    status, _, page = served.request("GET", "/no/such/page/here", headers=HTML)
    assert status == 404 and "no page" in page.decode().lower()
    status, body = served.json("GET", "/google/unknown/model/1?tf-hub-format=compressed")
    assert status == 404 and "model-registry handles add" in body["message"], body
    status, body = served.json("GET", "/google/nnlm-en-dim50/2?tf-hub-format=uncompressed")
    assert status == 400 and "compressed" in body["message"]

    # Every archive sent through a legacy URL is counted (flushed within seconds, and at shut-down).
    for _ in range(3):
        assert served.request("GET", "/tfhub-modules/google/nnlm-en-dim50/2.tar.gz")[0] == 200
    assert served.request("HEAD", "/google/nnlm-en-dim50/2?tf-hub-format=compressed")[0] == 200
    served.stop()
    catalog = DatabaseCatalog(served.env["MODEL_REGISTRY_DATABASE_URL"])
    assert catalog.download_counts(publisher="text", name="embed") == {1: 3}


def test_reading_needs_a_token_where_the_server_asks_for_one(start_registry_server):
    server = start_registry_server(extra_env={"MODEL_REGISTRY_REQUIRE_READ_TOKEN": "1"})
    assert server.publish("text/embed", ARCHIVE, legacy_handles=LEGACY[:1])[0] == 201
    path = "/google/nnlm-en-dim50/2?tf-hub-format=compressed"
    assert server.request("GET", path)[0] == 401
    reader = create_token(server.env, "reader", "read")
    status, _, body = server.request("GET", path, token=reader)
    assert status == 200 and body == ARCHIVE


def test_client_mode_finds_a_legacy_handle_through_the_server_then_offline(served, tmp_path):
    token = create_token(served.env, "reader", "read")
    online = Registry(server_url=served.url, token=token, cache_dir=tmp_path / "cache")
    path = online.resolve("http://tfhub.dev/google/nnlm-en-dim50/2/")
    served.stop()
    offline = Registry(server_url=served.url, token=token, cache_dir=tmp_path / "cache", offline=True)
    assert offline.resolve("https://tfhub.dev/google/nnlm-en-dim50/2") == path  # the server is gone
    with pytest.raises(OfflineError, match="model-registry import tfhub-cache"):
        offline.resolve("https://tfhub.dev/google/never-asked/1")
