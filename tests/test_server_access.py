"""Tokens on a real server: who may publish, move aliases, delete and manage tokens; nothing leaks.

Every refusal is JSON with 401 (no or unknown token) or 403 (known token
without the right), and changes nothing. The database holds token hashes only,
and neither the server's log nor its answers ever show a token.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.conftest import REFERENCE_DIR
from tests.server_support import cli, create_token, multipart_publish_body

ARCHIVE = (REFERENCE_DIR / "tf2_text_embedding.tar.gz").read_bytes()
PUBLISH = "/api/v1/models/text/embed/versions"
_CONTENT_TYPE, _BODY = multipart_publish_body({}, ARCHIVE)
#: The keyword arguments of ``RegistryServer.request`` that publish ARCHIVE.
UPLOAD = {"body": _BODY, "headers": {"Content-Type": _CONTENT_TYPE}}


@pytest.fixture
def server(registry_server):
    status, body = registry_server.json("POST", PUBLISH, **UPLOAD, token=registry_server.admin_token)
    assert status == 201, body
    return registry_server


def tokens(server) -> dict[str, str]:
    env = server.env
    made = {
        "read": create_token(env, "reader", "read"),
        "publish_other": create_token(env, "vision-ci", "publish", publisher="vision"),
        "publish": create_token(env, "text-ci", "publish", publisher="text"),
        "revoked": create_token(env, "old", "admin"),
    }
    cli("token", "revoke", "old", env=env)
    return made


def write_calls():
    return [
        ("POST", PUBLISH, UPLOAD),
        ("PUT", "/api/v1/models/text/embed/aliases/prod", {"json_body": {"version": 1}}),
        ("DELETE", "/api/v1/models/text/embed/aliases/prod", {}),
        ("DELETE", "/api/v1/models/text/embed/versions/1", {}),
        ("POST", "/api/v1/tokens", {"json_body": {"name": "sneaky", "scope": "admin"}}),
        ("DELETE", "/api/v1/tokens/admin", {}),
    ]


def test_no_bogus_read_other_publisher_or_revoked_token_can_write(server):
    made = tokens(server)
    callers = {"no token": None, "bogus token": "mrt_" + "x" * 43, "not even a token": "hunter2",
               "read token": made["read"], "publish token of another publisher": made["publish_other"],
               "revoked token": made["revoked"]}
    for who, token in callers.items():
        for method, path, kwargs in write_calls():
            status, body = server.json(method, path, token=token, **kwargs)
            expected = 401 if who in ("no token", "bogus token", "not even a token", "revoked token") else 403
            assert status == expected, (who, method, path, status, body)
            assert body["error"] == ("unauthorized" if expected == 401 else "forbidden")
            assert body["type"] in ("AuthenticationRequired", "AccessDenied")
    # nothing changed
    status, versions = server.json("GET", "/api/v1/models/text/embed/versions")
    assert [v["version"] for v in versions["items"]] == [1]
    assert server.json("GET", "/api/v1/models/text/embed/aliases")[1] == {}


def test_a_publisher_bound_token_writes_to_its_publisher_only_and_cannot_delete(server):
    made = tokens(server)
    assert server.json("POST", PUBLISH, **UPLOAD, token=made["publish"])[0] == 201
    status, body = server.json("PUT", "/api/v1/models/text/embed/aliases/prod", token=made["publish"],
                               json_body={"version": 2})
    assert status == 200 and body["aliases"] == ["prod"]
    status, body = server.json("DELETE", "/api/v1/models/text/embed/versions/1", token=made["publish"])
    assert status == 403 and "admin" in body["message"]
    status, body = server.json("POST", "/api/v1/models/vision/x/versions", **UPLOAD, token=made["publish"])
    assert status == 403 and "text" in body["message"]
    assert server.json("DELETE", "/api/v1/models/text/embed/versions/1", token=server.admin_token)[0] == 200


def test_every_write_endpoint_in_the_openapi_document_refuses_an_anonymous_call(server):
    status, spec = server.json("GET", "/openapi.json")
    assert status == 200
    writes = [(method.upper(), path) for path, item in spec["paths"].items() for method in item
              if method in ("post", "put", "delete", "patch")]
    assert len(writes) >= 6
    for method, path in writes:
        concrete = (path.replace("{publisher}", "text").replace("{model}", "embed").replace("{version}", "1")
                    .replace("{alias}", "prod").replace("{name}", "admin"))
        status, headers, raw = server.request(method, concrete, body=b"{}", headers={"Content-Type": "application/json"})
        assert status in (401, 403), (method, path, status, raw[:200])
        assert headers["content-type"].startswith("application/json")
        assert set(json.loads(raw)) >= {"error", "message"}


def test_tokens_are_stored_as_hashes_and_never_logged(server):
    made = tokens(server)
    every = [server.admin_token, *made.values()]
    # use them, including in a query string someone might paste a token into
    for token in every:
        server.request("GET", "/api/v1/models", token=token)
        server.request("GET", f"/api/v1/models?token={token}")
    server.request("POST", PUBLISH, **UPLOAD, token=made["publish"])
    database = server.env["MODEL_REGISTRY_DATABASE_URL"].removeprefix("sqlite:///")
    dump = "\n".join(sqlite3.connect(database).iterdump())
    log = server.log()
    assert '"GET /api/v1/models' in log  # the access log is on
    for token in every:
        assert token not in dump
        assert token not in log
        assert token[4:20] not in log


def test_token_administration_through_the_api_needs_an_unrestricted_admin(server):
    made = tokens(server)
    status, body = server.json("POST", "/api/v1/tokens", token=server.admin_token,
                               json_body={"name": "ci", "scope": "publish", "publisher": "text"})
    assert status == 201 and body["token"].startswith("mrt_") and body["scope"] == "publish"
    new = body["token"]
    assert server.json("POST", PUBLISH, **UPLOAD, token=new)[0] == 201
    status, listed = server.json("GET", "/api/v1/tokens", token=server.admin_token)
    assert {"ci", "admin", "reader"} <= {t["name"] for t in listed["items"]}
    assert all("token" not in t and "token_hash" not in t for t in listed["items"])
    assert server.json("GET", "/api/v1/tokens", token=made["publish"])[0] == 403
    assert server.json("DELETE", "/api/v1/tokens/ci", token=server.admin_token)[0] == 200
    assert server.json("POST", PUBLISH, **UPLOAD, token=new)[0] == 401  # revoked at once


def test_reads_can_be_made_token_only(start_registry_server):
    server = start_registry_server(extra_env={"MODEL_REGISTRY_REQUIRE_READ_TOKEN": "1"})
    assert server.json("POST", PUBLISH, **UPLOAD, token=server.admin_token)[0] == 201
    reader = create_token(server.env, "reader", "read")
    for path in ("/api/v1/models", "/api/v1/models/text/embed/versions/1", "/text/embed/1?tf-hub-format=compressed"):
        assert server.request("GET", path)[0] == 401, path
        assert server.request("GET", path, token="mrt_bogus")[0] == 401, path
        assert server.request("GET", path, token=reader)[0] == 200, path
    assert server.request("GET", "/healthz")[0] == 200  # a load balancer's probe needs no token


def test_a_client_without_a_token_is_told_once_to_set_it_and_db_commands_refuse_client_mode(server, tmp_path):
    """In client mode (MODEL_REGISTRY_URL): a refused write names the variable once; `db upgrade` and `db current`
    refuse rather than quietly migrating a local SQLite catalog this client does not use."""
    env = {k: v for k, v in server.env.items() if not k.startswith("MODEL_REGISTRY_")}
    env.update(MODEL_REGISTRY_URL=server.url, MODEL_REGISTRY_CACHE_DIR=str(tmp_path / "cache"),
               MODEL_REGISTRY_DATABASE_URL=f"sqlite:///{tmp_path / 'local.db'}")
    refused = cli("alias", "set", "text/embed", "prod", "1", env=env, check=False)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and len(lines) == 1 and lines[0].startswith("Error: "), refused.stderr
    assert lines[0].count("MODEL_REGISTRY_TOKEN") == 1, lines[0]
    for command in ("upgrade", "current"):
        done = cli("db", command, env=env, check=False)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert f"MODEL_REGISTRY_URL is set ({server.url})" in done.stderr and "where the server runs" in done.stderr
    assert not (tmp_path / "local.db").exists()


def test_token_cli_prints_the_token_alone_on_stdout(registry_server):
    env = registry_server.env
    result = cli("token", "create", "--name", "solo", "--scope", "read", env=env)
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("mrt_")
    assert "solo" in result.stderr and result.stdout.strip() not in result.stderr
    listed = cli("token", "list", "--json", env=env).stdout
    assert "solo" in listed and result.stdout.strip() not in listed
    again = cli("token", "create", "--name", "solo", "--scope", "read", env=env, check=False)
    assert again.returncode == 1 and "revoke it first" in again.stderr
    assert cli("token", "revoke", "solo", env=env).returncode == 0
    assert cli("token", "create", "--name", "solo", "--scope", "admin", env=env).stdout.startswith("mrt_")
