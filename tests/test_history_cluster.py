"""Two servers over one PostgreSQL, 100 mixed writes from concurrent clients while one server is killed with
SIGKILL and restarted, and the webhook receiver down for the first part of the run.

Whatever the kill interrupted, the catalog and its audit log agree: every version
row has exactly one ``version.published`` entry, every deleted one exactly one
``version.deleted``, each alias's entries form one unbroken chain (each entry's
``before`` is the previous one's ``after``) ending at the alias's state, and no
entry names a version that does not exist (refused writes left none). The
receiver, verifying each signature with ``standardwebhooks``, ends up with every
event of every committed change — exactly once by ``webhook-id``.
"""

from __future__ import annotations

import http.client
import os
import random
import signal
import threading
import time
import urllib.error
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import REFERENCE_DIR
from tests.server_support import cli
from tests.services import free_port
from tests.webhook_receiver import Receiver

ARCHIVE = (REFERENCE_DIR / "tf2_text_embedding.tar.gz").read_bytes()
MODELS = ("team/a", "team/b")
WRITES = 100
EVENTS = ("version.published", "version.deleted", "alias.set", "alias.moved", "alias.removed")


def _plan(seed: int = 21) -> list[tuple]:
    """The 100 writes: publishes, alias moves (some to versions that will not exist: refused) and deletes."""
    rnd = random.Random(seed)
    ops: list[tuple] = [("publish", m) for m in MODELS for _ in range(3)]
    while len(ops) < WRITES:
        model, pick = rnd.choice(MODELS), rnd.random()
        if pick < 0.35:
            ops.append(("publish", model))
        elif pick < 0.8:
            ops.append(("alias", model, rnd.choice(("prod", "staging")), rnd.randint(1, 25)))
        else:
            ops.append(("delete", model, rnd.randint(1, 15)))
    return ops


@pytest.mark.postgres
def test_sigkill_mid_run_leaves_one_entry_per_committed_change_and_every_event_delivered(
        start_registry_server, postgres_url, tmp_path):
    allow = {"MODEL_REGISTRY_WEBHOOK_ALLOW": "127.0.0.1"}
    storage = str(tmp_path / "artifacts")
    first = start_registry_server(database_url=postgres_url, storage_url=storage, extra_env=allow)
    second = start_registry_server(database_url=postgres_url, storage_url=storage, extra_env=allow,
                                   admin_token=False)
    token = first.admin_token
    receiver = Receiver(free_port())  # not started: down for the first part of the run
    secret = cli("webhook", "add", receiver.url, "--events", ",".join(EVENTS), env=first.env).stdout.strip()
    receiver.secret = secret

    outcomes: list[tuple[tuple, object]] = []
    lock = threading.Lock()

    def send(server, op: tuple):
        if op[0] == "publish":
            return server.publish(op[1], ARCHIVE, token=token)[0]
        if op[0] == "alias":
            return server.json("PUT", f"/api/v1/models/{op[1]}/aliases/{op[2]}", token=token,
                               json_body={"version": op[3]})[0]
        return server.json("DELETE", f"/api/v1/models/{op[1]}/versions/{op[2]}", token=token)[0]

    def write(n: int, op: tuple) -> None:
        """As behind a load balancer: a request no server took (refused connection) goes to the other one; one
        cut off mid-way (the kill) is not repeated — it may or may not have committed."""
        servers = [(first, second)[n % 2], (first, second)[(n + 1) % 2]]
        for server in servers:
            try:
                status: object = send(server, op)
                break
            except urllib.error.URLError as error:
                status = f"no answer: {error.reason}"
                if not isinstance(error.reason, ConnectionRefusedError):
                    break
            except (ConnectionError, TimeoutError, http.client.HTTPException) as error:
                status = f"cut off: {type(error).__name__}"
                break
        with lock:
            outcomes.append((op, status))

    plan = _plan()
    down_since = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(write, n, op) for n, op in enumerate(plan[:70])]
        while sum(f.done() for f in futures) < 25:
            time.sleep(0.01)
        os.killpg(first.process.pid, signal.SIGKILL)  # mid-run, with writes in flight
        first.process.wait()
        first.start()  # restarted on its port while the second server takes the writes
        futures += [pool.submit(write, n, op) for n, op in enumerate(plan[70:], start=70)]
        for future in futures:
            future.result()
    assert len(outcomes) == WRITES
    statuses = [status for _, status in outcomes]
    assert statuses.count(201) >= 20 and any(s == 404 for s in statuses)  # committed ones, and refused ones
    assert all(isinstance(s, int) or s.startswith("cut off") for s in statuses), statuses  # failover worked

    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as db:
        versions = {f"{p}/{m}/{v}": deleted for p, m, v, deleted in db.execute(text(
            "SELECT m.publisher, m.name, v.version, v.deleted_at IS NOT NULL FROM model_version v "
            "JOIN registered_model m ON m.id = v.model_id"))}
        aliases = {f"{p}/{m}@{a}": v for p, m, a, v in db.execute(text(
            "SELECT m.publisher, m.name, a.name, v.version FROM alias a JOIN registered_model m ON m.id = a.model_id "
            "JOIN model_version v ON v.id = a.version_id"))}
        entries = db.execute(text("SELECT id, action, subject, before, after FROM audit_entry "
                                  "WHERE action NOT LIKE 'token.%' AND action NOT LIKE 'webhook.%' ORDER BY id")).all()
    engine.dispose()

    published = [subject for _, action, subject, _, _ in entries if action == "version.published"]
    deleted = [subject for _, action, subject, _, _ in entries if action == "version.deleted"]
    assert sorted(published) == sorted(versions)  # one entry per version row, no more, no fewer
    assert sorted(deleted) == sorted(h for h, gone in versions.items() if gone)
    chains: dict[str, list] = defaultdict(list)
    for _, action, subject, before, after in entries:
        for state in (before, after):
            assert state is None or state["handle"] in versions, (action, subject, state)  # nothing refused got in
        if action.startswith("alias."):
            chains[subject].append((before, after))
    for alias, chain in chains.items():
        for (_, previous), (before, _) in zip(chain, chain[1:]):
            assert (before or {}).get("version") == (previous or {}).get("version"), alias
        assert (chain[-1][1] or {}).get("version") == aliases.get(alias), alias
    assert set(aliases) <= set(chains)
    answered = sum(1 for op, status in outcomes if op[0] == "publish" and status == 201)
    assert answered <= len(versions) <= sum(1 for op, _ in outcomes if op[0] == "publish")

    # The receiver comes up after 30 s down; every event of every committed change arrives, once by webhook-id.
    time.sleep(max(0.0, 30 - (time.monotonic() - down_since)))
    receiver.start()
    try:
        wanted = {entry_id for entry_id, action, *_ in entries if action in EVENTS}
        receiver.wait_for(lambda got: {m["body"]["data"]["audit_id"] for m in got} >= wanted, timeout=180)
        time.sleep(1)
        unique = receiver.unique()
        assert sorted(m["body"]["data"]["audit_id"] for m in unique.values()) == sorted(wanted)
        assert all(m["verified"] for m in receiver.messages)
    finally:
        receiver.stop()
