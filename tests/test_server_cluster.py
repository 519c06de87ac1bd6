"""Several stateless servers over one PostgreSQL and one bucket (the GCS emulator through gcsfs).

16 clients publish one model at once, split over two server processes: the
database hands out versions 1..16 with no gap or duplicate, and every version
downloads intact from either server.
"""

from __future__ import annotations

import hashlib
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import REFERENCE_DIR

pytestmark = [pytest.mark.postgres, pytest.mark.gcs, pytest.mark.slow]

ARCHIVE = (REFERENCE_DIR / "tf2_text_embedding.tar.gz").read_bytes()


def test_two_servers_one_database_one_bucket(start_registry_server, postgres_server, gcs_bucket):
    database_url = postgres_server.url(postgres_server.create_database())
    first = start_registry_server(database_url=database_url, storage_url=gcs_bucket)
    second = start_registry_server(database_url=database_url, storage_url=gcs_bucket, admin_token=False)
    servers = [first, second]
    token = first.admin_token  # tokens live in the shared database: valid on every server

    def publish(i: int) -> int:
        server = servers[i % 2]
        status, body = server.publish("shared/model", ARCHIVE, token=token, description=f"client-{i}")
        assert status == 201, body
        return body["version"]

    with ThreadPoolExecutor(16) as pool:
        numbers = sorted(pool.map(publish, range(16)))
    assert numbers == list(range(1, 17))

    digest = hashlib.sha256(ARCHIVE).hexdigest()
    for server in servers:
        status, listing = server.json("GET", "/api/v1/models/shared/model/versions")
        assert [v["version"] for v in listing["items"]] == list(range(1, 17))
        assert {v["sha256"] for v in listing["items"]} == {digest}
        assert sorted(v["description"] for v in listing["items"]) == sorted(f"client-{i}" for i in range(16))

    def download(args) -> bool:
        server, number = args
        with urllib.request.urlopen(f"{server.url}/shared/model/{number}?tf-hub-format=compressed",
                                    timeout=120) as response:
            return hashlib.sha256(response.read()).hexdigest() == digest

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(download, [(s, n) for s in servers for n in range(1, 17)]))
    for server in servers:
        assert "Traceback" not in server.log()
