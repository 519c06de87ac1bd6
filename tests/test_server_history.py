"""The audit log and alias history through a real server: the token's name is the actor, admins alone read the
log, and client mode, the CLI and the JSON API answer the same."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from tests.conftest import REFERENCE_DIR
from tests.server_support import cli, create_token

ARCHIVE = (REFERENCE_DIR / "tf2_text_embedding.tar.gz").read_bytes()


def test_through_a_server_the_token_is_the_actor_and_only_an_admin_reads_the_log(registry_server):
    server = registry_server
    publisher_token = create_token(server.env, "text-ci", "publish", publisher="text")
    reader = create_token(server.env, "reader", "read")
    for _ in range(2):
        status, body = server.publish("text/embed", ARCHIVE, token=publisher_token)
        assert status == 201, body
    assert server.json("PUT", "/api/v1/models/text/embed/aliases/prod", token=publisher_token,
                       json_body={"version": 1})[0] == 200
    assert server.json("PUT", "/api/v1/models/text/embed/aliases/prod", token=server.admin_token,
                       json_body={"version": 2})[0] == 200
    assert server.json("DELETE", "/api/v1/models/text/embed/versions/1", token=server.admin_token)[0] == 200

    for token in (None, reader, publisher_token):
        status, body = server.json("GET", "/api/v1/audit", token=token)
        assert status in (401, 403) and body["error"] in ("unauthorized", "forbidden"), body
    status, body = server.json("GET", "/api/v1/audit?model=text/embed", token=server.admin_token)
    assert status == 200, body
    got = [(e["action"], e["subject"], e["actor"]) for e in reversed(body["items"])]
    assert got == [("version.published", "text/embed/1", "text-ci"), ("version.published", "text/embed/2", "text-ci"),
                   ("alias.set", "text/embed@prod", "text-ci"), ("alias.moved", "text/embed@prod", "admin"),
                   ("version.deleted", "text/embed/1", "admin")]
    published = body["items"][-1]["after"]
    assert published["url"] == f"{server.url}/text/embed/1?tf-hub-format=compressed"
    assert len(published["sha256"]) == 64 and published["handle"] == "text/embed/1"

    # Keyset pages: newest first, each page's ``next`` continuing after its last entry.
    seen, after = [], ""
    while after is not None:
        status, page = server.json("GET", f"/api/v1/audit?limit=2&after={after}", token=server.admin_token)
        assert status == 200 and len(page["items"]) <= 2
        seen += [e["id"] for e in page["items"]]
        after = page["next"]
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) >= 7  # + the CLI's token writes
    tokens_made = [e for e in server.json("GET", "/api/v1/audit?action=token", token=server.admin_token)[1]["items"]]
    assert {e["subject"] for e in tokens_made} == {"token:admin", "token:text-ci", "token:reader"}
    assert all("@" in e["actor"] for e in tokens_made)  # made with the CLI on the catalog: user@host

    # The same log through client mode and the CLI, which refuses a non-admin token with one line.
    client = {**server.env, "MODEL_REGISTRY_URL": server.url, "MODEL_REGISTRY_TOKEN": server.admin_token}
    listed = json.loads(cli("audit", "--json", "--action", "alias", env=client).stdout)
    assert [(e["action"], e["actor"]) for e in listed] == [("alias.moved", "admin"), ("alias.set", "text-ci")]
    refused = cli("audit", env={**client, "MODEL_REGISTRY_TOKEN": publisher_token}, check=False)
    assert refused.returncode == 1 and refused.stderr.startswith("Error:") and "Traceback" not in refused.stderr
    text = cli("audit", "--model", "text/embed", "--actor", "admin", env=client).stdout
    assert "alias.moved" in text and "text/embed/1 -> text/embed/2" in text

    # Nothing in the log is a token.
    everything = json.dumps(server.json("GET", "/api/v1/audit?limit=1000", token=server.admin_token)[1])
    for secret in (server.admin_token, publisher_token, reader):
        assert secret not in everything


def test_alias_history_and_at_through_the_api_and_client_mode(registry_server):
    from registry import Registry

    server = registry_server
    for _ in range(2):
        assert server.publish("text/embed", ARCHIVE)[0] == 201
    server.json("PUT", "/api/v1/models/text/embed/aliases/prod", token=server.admin_token, json_body={"version": 1})
    time.sleep(0.1)
    then = datetime.now(timezone.utc)
    time.sleep(0.1)
    server.json("PUT", "/api/v1/models/text/embed/aliases/prod", token=server.admin_token, json_body={"version": 2})

    status, body = server.json("GET", "/api/v1/models/text/embed/aliases/prod/history")
    assert status == 200 and [(i["version"], i["actor"]) for i in body["items"]] == [(1, "admin"), (2, "admin")]
    status, body = server.json("GET", f"/api/v1/models/text/embed/versions/@prod?at={then.isoformat()}".replace(
        "+", "%2B"))
    assert status == 200 and body["version"] == 1, body
    naive_utc = then.replace(tzinfo=None).isoformat()  # a query without a zone is UTC
    assert server.json("GET", f"/api/v1/models/text/embed/versions/@prod?at={naive_utc}")[1]["version"] == 1

    client = Registry(server_url=server.url)
    assert client.get_version("text/embed@prod", at=then).version == 1
    assert client.get_version("text/embed@prod").version == 2
    assert [i.version for i in client.alias_history("text/embed@prod")] == [1, 2]
    shown = cli("alias", "history", "text/embed@prod", env={**server.env, "MODEL_REGISTRY_URL": server.url}).stdout
    assert "text/embed/1" in shown and "text/embed/2" in shown and "now" in shown
