"""Every route declares its access check; routers share helpers through non-router modules only.

The application is built in process (``create_app`` around a registry on an
empty SQLite catalog) and its routes are read from FastAPI's own dependency
tree, so a route added without ``Depends(scope(...))`` fails here before it
could serve anyone. The access decisions themselves are checked as values
(``auth.check``) and, end to end, in ``tests/test_server_access.py`` and
``tests/test_web_pages.py`` on a real ``model-registry serve``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from registry.access import Grant
from registry.errors import AccessDenied, AuthenticationRequired
from registry.server import auth
from registry.server.auth import access_rule, check
from tests.test_import_graph import import_graph

#: Routes open to everyone, whatever the read-token setting, and why.
PUBLIC = {
    ("/healthz", "GET"): "a load balancer's probe has no token",
    ("/healthz", "HEAD"): "the same probe by HEAD (a route of its own, left out of the OpenAPI document)",
    ("/signin", "GET"): "the sign-in form is how a browser gets its read credential",
    ("/signin", "POST"): "checks the token it is given itself",
    ("/signout", "POST"): "only drops the cookie",
    ("/openapi.json", "GET"): "the API's description",
    ("/api/docs", "GET"): "the API's description",
    ("/simple/", "GET"): "the client's package index: the client code is no secret, and pip sends no bearer token",
    ("/simple/{project}/", "GET"): "the client's package index (as above)",
    ("/simple/{project}/{filename}", "GET"): "the client wheel itself (as above)",
}
PUBLIC_MOUNTS = {"/static": "the pages' stylesheet and script",
                 "/static/swagger-ui": "Swagger UI's files, for the API's description page"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
#: Routes that read by POST, and why: they are reads, checked with the read scope (below).
READS_BY_POST = {
    "/v1/": "Kaggle's API (registry.server.kaggle_api): kagglesdk sends every call, reads too, as a POST",
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from registry.api import Registry
    from registry.server.app import create_app
    from registry.server.settings import ServerSettings

    root = tmp_path_factory.mktemp("routes")
    registry = Registry(database_url=f"sqlite:///{root / 'catalog.db'}", storage_url=str(root / "artifacts"),
                        cache_dir=root / "cache")
    return create_app(registry, settings=ServerSettings())


def rules_of(dependant) -> list[tuple[str, str]]:
    """The access rules among a route's dependencies, sub-dependencies included."""
    found = []
    for dependency in dependant.dependencies:
        rule = access_rule(dependency.call)
        if rule is not None:
            found.append(rule)
        found += rules_of(dependency)
    return found


def served_routes(app) -> list:
    """The routes as served: an included router's routes with their full path and every dependency.

    FastAPI before 0.16x copied included routes into ``app.routes`` as ``APIRoute``s;
    later versions keep the router and give its routes' effective forms
    (``effective_route_contexts``), which have the same ``path``, ``methods`` and ``dependant``.
    """
    served = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        served += list(contexts()) if contexts is not None else [route]
    return served


def api_routes(app) -> list[tuple[object, str]]:
    """(route, method) of every route FastAPI resolves dependencies for (HEAD beside GET left out)."""
    return [(route, method) for route in served_routes(app) if hasattr(route, "dependant")
            for method in sorted(route.methods) if not (method == "HEAD" and "GET" in route.methods)]


def test_every_route_declares_its_access_or_is_public_by_name(app):
    undeclared, public_but_checked = [], []
    for route in served_routes(app):
        if isinstance(route, Mount):
            assert route.path in PUBLIC_MOUNTS, f"mount {route.path} is not on the public list"
            continue
        assert isinstance(route, (Route, APIRoute)) or hasattr(route, "dependant"), route
        for method in sorted(route.methods or ()):
            if method == "HEAD" and "GET" in route.methods:
                continue
            rules = rules_of(route.dependant) if hasattr(route, "dependant") else []
            if (route.path, method) in PUBLIC:
                if rules:
                    public_but_checked.append((method, route.path))
            elif len(rules) != 1:
                undeclared.append((method, route.path, rules))
    assert undeclared == [], "routes without exactly one access check (Depends(scope(...))): " + repr(undeclared)
    assert public_but_checked == []
    # The walk saw the routes that matter (so an empty app cannot pass).
    seen = {(route.path, method) for route, method in api_routes(app)}
    assert {("/api/v1/models", "GET"), ("/api/v1/models/{publisher}/{model}/versions", "POST"),
            ("/api/v1/tokens", "POST"), ("/", "GET"), ("/{publisher}/{model}/{version}", "GET")} <= seen


def test_writes_need_a_write_scope_on_the_paths_publisher_or_on_every_publisher(app):
    writes = [(route, method) for route, method in api_routes(app)
              if method in WRITE_METHODS and (route.path, method) not in PUBLIC
              and not (method == "POST" and route.path.startswith(tuple(READS_BY_POST)))]
    assert len(writes) >= 6  # publish, delete, set and remove an alias, create and revoke a token
    for route, method in writes:
        [(scope, whom)] = rules_of(route.dependant)
        assert scope in ("publish", "admin"), (method, route.path, scope)
        if "{publisher}" in route.path:
            assert whom == "the path's publisher", (method, route.path, whom)
        else:
            assert whom == "every publisher", (method, route.path, whom)
    tokens = {(route.path, method): rules_of(route.dependant) for route, method in api_routes(app)
              if route.path.startswith("/api/v1/tokens")}
    assert set(map(tuple, sum(tokens.values(), []))) == {("admin", "every publisher")}, tokens


def test_a_publisher_bound_check_sits_only_on_routes_with_a_publisher_in_the_path(app):
    for route, method in api_routes(app):
        for scope, whom in rules_of(route.dependant):
            if whom == "the path's publisher":
                assert "{publisher}" in route.path, (method, route.path)


#: What only an admin of every publisher reads: tokens, the audit log, webhooks (their URLs and delivery logs).
ADMIN_READS = ("/api/v1/tokens", "/api/v1/audit", "/api/v1/webhooks")


def test_reads_need_the_read_scope(app):
    for route, method in api_routes(app):
        if method == "GET" and (route.path, method) not in PUBLIC and not route.path.startswith(ADMIN_READS):
            assert [scope for scope, _ in rules_of(route.dependant)] == ["read"], route.path
    posted_reads = [route for route, method in api_routes(app)
                    if method == "POST" and route.path.startswith(tuple(READS_BY_POST))]
    assert len(posted_reads) >= 3, "the walk saw no reads by POST"
    for route in posted_reads:
        assert [scope for scope, _ in rules_of(route.dependant)] == ["read"], route.path


def test_the_audit_log_and_webhooks_are_an_admin_of_every_publishers(app):
    admin_routes = [(route, method) for route, method in api_routes(app) if route.path.startswith(ADMIN_READS[1:])]
    assert len(admin_routes) >= 7  # audit; list, add, remove, enable, test webhooks; a hook's deliveries
    for route, method in admin_routes:
        assert rules_of(route.dependant) == [("admin", "every publisher")], (method, route.path)


def test_the_access_decision(app):
    reader, publisher, admin = Grant("r", "read"), Grant("ci", "publish", "text"), Grant("root", "admin")
    bound_admin = Grant("text-admin", "admin", "text")
    assert check(None, "read", reads_open=True) is None
    assert check(reader, "read", reads_open=False) is reader
    assert check(publisher, "publish", reads_open=True, publisher="text") is publisher
    assert check(admin, "admin", reads_open=True, every_publisher=True) is admin
    refusals = [
        (None, "read", dict(reads_open=False), AuthenticationRequired, "needs a token with scope 'read'"),
        (None, "publish", dict(reads_open=True, publisher="text"), AuthenticationRequired, "scope 'publish'"),
        (reader, "publish", dict(reads_open=True, publisher="text"), AccessDenied, "has scope 'read'"),
        (publisher, "publish", dict(reads_open=True, publisher="vision"), AccessDenied,
         "may write only to publisher 'text', not 'vision'"),
        (publisher, "admin", dict(reads_open=True, publisher="text"), AccessDenied, "needs scope 'admin'"),
        (bound_admin, "admin", dict(reads_open=True, every_publisher=True), AccessDenied,
         "limited to publisher 'text'"),
    ]
    for grant, scope, options, error, words in refusals:
        with pytest.raises(error, match=words):
            check(grant, scope, **options)
    with pytest.raises(ValueError, match="unknown scope"):
        auth.scope("write")  # type: ignore[arg-type]  # the point: a scope that does not exist


def _router_modules() -> set[str]:
    """Modules under registry/server that define routes: a module-level ``router = APIRouter(...)``."""
    folder = Path(auth.__file__).parent
    return {f"registry.server.{path.stem}" for path in folder.glob("*.py")
            if "\nrouter = APIRouter(" in path.read_text()}


def test_no_router_imports_another_router():
    routers = _router_modules()
    assert {"registry.server.api_v1", "registry.server.hub_urls", "registry.server.pages"} <= routers
    graph = import_graph()
    crossing = {name: sorted(graph[name] & (routers - {name})) for name in routers}
    assert {name: targets for name, targets in crossing.items() if targets} == {}


def test_routes_reach_the_registry_one_way():
    """Only the app factory and the dependencies module touch ``app.state``; routes declare ``RegistryDep``."""
    folder = Path(auth.__file__).parent
    touching = sorted(path.name for path in folder.glob("*.py")
                      if "state.registry" in path.read_text() or "state.server_settings" in path.read_text())
    assert touching == ["app.py", "deps.py"], touching
