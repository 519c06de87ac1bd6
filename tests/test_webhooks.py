"""Webhooks end to end: real server processes, a real receiver on 127.0.0.1 that verifies each signature with the
``standardwebhooks`` reference library, SQLite and PostgreSQL.

Every committed change a hook wants reaches it (at least once; once by ``webhook-id``);
a receiver that is down gets its messages when it is back; a run of failures
disables a hook, with the reason shown; redirects are not followed; a publish token
can neither add a hook nor read the audit log, and no destination outside
``MODEL_REGISTRY_WEBHOOK_ALLOW`` is accepted; no secret reaches a log.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import REFERENCE_DIR
from tests.server_support import cli, create_token
from tests.webhook_receiver import Receiver

ARCHIVE = (REFERENCE_DIR / "tf2_text_embedding.tar.gz").read_bytes()
ALLOW = {"MODEL_REGISTRY_WEBHOOK_ALLOW": "127.0.0.1"}
EVENTS = "version.published,version.deleted,alias.set,alias.moved,alias.removed"


@pytest.fixture
def receiver():
    made = []

    def start(port: int | None = None) -> Receiver:
        made.append(Receiver(port).start())
        return made[-1]

    yield start
    for r in made:
        r.stop()


def add_hook(env: dict, url: str, events: str = EVENTS, *extra: str) -> tuple[str, int]:
    """``webhook add`` with the CLI: (the secret, alone on stdout; the hook's id)."""
    done = cli("webhook", "add", url, "--events", events, *extra, env=env)
    secret = done.stdout
    assert secret.count("\n") == 1 and secret.startswith("whsec_"), done.stdout
    hooks = json.loads(cli("webhook", "list", "--json", env=env).stdout)
    return secret.strip(), max(h["id"] for h in hooks)


def deliveries(env: dict, hook_id: int) -> list[dict]:
    return json.loads(cli("webhook", "deliveries", str(hook_id), "--json", env=env).stdout)


def test_every_change_is_delivered_signed_and_nothing_leaks(start_registry_server, receiver):
    server = start_registry_server(extra_env=ALLOW)
    hook_receiver = receiver()
    secret, hook_id = add_hook(server.env, hook_receiver.url)
    hook_receiver.secret = secret

    for _ in range(2):
        assert server.publish("text/embed", ARCHIVE)[0] == 201
    for version in (1, 2):
        assert server.json("PUT", "/api/v1/models/text/embed/aliases/prod", token=server.admin_token,
                           json_body={"version": version})[0] == 200
    assert server.json("DELETE", "/api/v1/models/text/embed/versions/1", token=server.admin_token)[0] == 200
    expected = ["version.published", "version.published", "alias.set", "alias.moved", "version.deleted"]
    hook_receiver.wait_for(lambda got: len({m["id"] for m in got}) >= len(expected))
    time.sleep(1)  # nothing more arrives
    got = sorted(hook_receiver.unique().values(), key=lambda m: m["body"]["data"]["audit_id"])
    assert [m["type"] for m in got] == expected
    assert all(m["verified"] for m in got)
    published = got[0]["body"]["data"]["after"]
    assert published["handle"] == "text/embed/1" and len(published["sha256"]) == 64
    assert published["url"] == f"{server.url}/text/embed/1?tf-hub-format=compressed"
    moved = got[3]["body"]["data"]
    assert (moved["before"]["handle"], moved["after"]["handle"], moved["actor"]) == ("text/embed/1",
                                                                                   "text/embed/2", "admin")
    headers = got[0]["headers"]
    assert headers["webhook-id"].startswith("msg_") and headers["webhook-signature"].startswith("v1,")

    # The delivery log: one answered attempt per message; the hook enabled, nothing pending.
    log = deliveries(server.env, hook_id)
    assert sorted(a["message_id"] for a in log) == sorted(m["id"] for m in got)
    assert {(a["status_code"], a["delivery_status"], a["attempt"]) for a in log} == {(204, "delivered", 1)}
    [hook] = json.loads(cli("webhook", "list", "--json", env=server.env).stdout)
    assert hook["enabled"] and hook["pending"] == 0 and "secret" not in hook

    # `webhook test` queues a message that a running server sends.
    message_id = cli("webhook", "test", str(hook_id), env=server.env).stdout.strip()
    hook_receiver.wait_for(lambda got: any(m["id"] == message_id for m in got))
    assert hook_receiver.unique()[message_id]["type"] == "webhook.test"

    # No secret or token in the server's log, the audit log, the hook listing or the delivery log.
    audit = server.json("GET", "/api/v1/audit?limit=1000", token=server.admin_token)[1]
    assert any(e["action"] == "webhook.added" for e in audit["items"])
    shown = [server.log(), json.dumps(audit), json.dumps(deliveries(server.env, hook_id)),
             cli("webhook", "list", env=server.env).stdout]
    for text in shown:
        assert secret not in text and secret.removeprefix("whsec_") not in text
        assert server.admin_token not in text

    cli("webhook", "remove", str(hook_id), env=server.env)
    assert json.loads(cli("webhook", "list", "--json", env=server.env).stdout) == []


def test_a_receiver_down_then_up_gets_its_messages(start_registry_server, receiver):
    from tests.services import free_port

    server = start_registry_server(extra_env=ALLOW)
    port = free_port()
    secret, hook_id = add_hook(server.env, f"http://127.0.0.1:{port}/hooks/registry", "version.published")
    assert server.publish("text/embed", ARCHIVE)[0] == 201
    deadline = time.monotonic() + 30
    while not deliveries(server.env, hook_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    failed = deliveries(server.env, hook_id)
    assert failed and failed[0]["status_code"] is None and "Connection" in failed[0]["error"]
    assert failed[0]["delivery_status"] == "pending"

    back = receiver(port)
    back.secret = secret
    [message] = back.wait_for(lambda got: len(got) >= 1, timeout=60)
    assert message["verified"] and message["id"] == failed[0]["message_id"]
    assert deliveries(server.env, hook_id)[0]["delivery_status"] == "delivered"


def test_failures_disable_a_hook_with_the_reason_and_redirects_are_not_followed(start_registry_server, receiver):
    server = start_registry_server(extra_env={**ALLOW, "MODEL_REGISTRY_WEBHOOK_DISABLE_AFTER": "3"})
    redirecting = receiver()
    redirecting.answer = 302
    secret, hook_id = add_hook(server.env, redirecting.url, "version.published")
    redirecting.secret = secret
    assert server.publish("text/embed", ARCHIVE)[0] == 201
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        [hook] = json.loads(cli("webhook", "list", "--json", env=server.env).stdout)
        if not hook["enabled"]:
            break
        time.sleep(0.5)
    assert not hook["enabled"] and "3 failed attempts in a row" in hook["disabled_reason"]
    assert "redirect" in hook["disabled_reason"] and hook["pending"] == 1
    assert "disabled:" in cli("webhook", "list", env=server.env).stdout
    assert all(m["headers"].get("Host") and m["type"] == "version.published" for m in redirecting.messages)
    assert len(redirecting.messages) == 3  # the same message three times; /elsewhere never asked for

    redirecting.answer = 204
    cli("webhook", "enable", str(hook_id), env=server.env)
    redirecting.wait_for(lambda got: len(got) == 4)
    assert len(redirecting.unique()) == 1
    assert deliveries(server.env, hook_id)[0]["delivery_status"] == "delivered"


def test_only_an_admin_adds_hooks_and_only_to_allowed_destinations(start_registry_server):
    server = start_registry_server(extra_env=ALLOW)
    publisher_token = create_token(server.env, "text-ci", "publish", publisher="text")
    body = {"url": "http://127.0.0.1:9/hooks", "events": ["version.published"]}
    status, answer = server.json("POST", "/api/v1/webhooks", token=publisher_token, json_body=body)
    assert status == 403 and answer["error"] == "forbidden"
    assert server.json("GET", "/api/v1/webhooks", token=publisher_token)[0] == 403
    for url in ("http://10.0.0.5/hooks", "http://169.254.169.254/latest/meta-data", "http://internal.example/x"):
        status, answer = server.json("POST", "/api/v1/webhooks", token=server.admin_token,
                                     json_body={**body, "url": url})
        assert status == 403 and "MODEL_REGISTRY_WEBHOOK_ALLOW" in answer["message"], answer
    status, answer = server.json("POST", "/api/v1/webhooks", token=server.admin_token,
                                 json_body={**body, "events": ["model.renamed"]})
    assert status == 409 and "unknown: model.renamed" in answer["message"]  # a CatalogError, as a bad token scope is
    status, answer = server.json("POST", "/api/v1/webhooks", token=server.admin_token, json_body=body)
    assert status == 201 and answer["secret"].startswith("whsec_")
    # The same through client mode: the CLI prints the new hook's secret alone; a publish token is refused.
    client = {**server.env, "MODEL_REGISTRY_URL": server.url, "MODEL_REGISTRY_TOKEN": server.admin_token}
    secret, hook_id = add_hook(client, "http://127.0.0.1:9/other", "alias.moved", "--publisher", "text")
    [listed] = [h for h in json.loads(cli("webhook", "list", "--json", env=client).stdout) if h["id"] == hook_id]
    assert listed["publisher"] == "text" and listed["events"] == ["alias.moved"]
    refused = cli("webhook", "add", "http://127.0.0.1:9/x", "--events", "alias.moved", check=False,
                  env={**client, "MODEL_REGISTRY_TOKEN": publisher_token})
    assert refused.returncode == 1 and refused.stdout == "" and "needs an admin token" in refused.stderr
    # With no allow-list (the default), nothing is allowed, not even 127.0.0.1.
    bare = {k: v for k, v in server.env.items() if k != "MODEL_REGISTRY_WEBHOOK_ALLOW"}
    refused = cli("webhook", "add", "http://127.0.0.1:9/hooks", "--events", "version.published", env=bare,
                  check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "nothing (the default)" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.postgres
def test_two_servers_over_one_postgresql_deliver_each_message_once(start_registry_server, postgres_url, receiver,
                                                                   tmp_path):
    first = start_registry_server(database_url=postgres_url, storage_url=str(tmp_path / "artifacts"),
                                  extra_env=ALLOW)
    second = start_registry_server(database_url=postgres_url, storage_url=str(tmp_path / "artifacts"),
                                   extra_env=ALLOW, admin_token=False)
    second.admin_token = first.admin_token
    hook_receiver = receiver()
    hook_receiver.secret, hook_id = add_hook(first.env, hook_receiver.url)
    for n in range(12):
        server = (first, second)[n % 2]
        assert server.publish("text/embed", ARCHIVE)[0] == 201
        assert server.json("PUT", "/api/v1/models/text/embed/aliases/prod", token=server.admin_token,
                           json_body={"version": n + 1})[0] == 200
    hook_receiver.wait_for(lambda got: len({m["id"] for m in got}) >= 24)
    time.sleep(2)
    assert len(hook_receiver.unique()) == 24 and all(m["verified"] for m in hook_receiver.messages)
    log = deliveries(first.env, hook_id)
    # Both processes sent, and no attempt went out twice: one attempt per message, each answered.
    assert len(log) == 24 and {a["attempt"] for a in log} == {1}
    assert len(hook_receiver.messages) == 24
