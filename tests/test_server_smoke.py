import json

from tests.conftest import REFERENCE_DIR


def test_server_publishes_and_serves(registry_server):
    server = registry_server
    archive = (REFERENCE_DIR / "tf2_text_embedding.tar.gz").read_bytes()
    status, body = server.json("POST", "/api/v1/models/text/embed/versions", body=archive, token=server.admin_token)
    assert status == 201, body
    status, headers, data = server.request("GET", "/text/embed/1?tf-hub-format=compressed")
    assert status == 200 and data == archive
