"""Who is calling, and whether they may: bearer tokens checked against the catalog, as route dependencies.

Reads are open unless ``MODEL_REGISTRY_REQUIRE_READ_TOKEN`` is set (so the
unmodified tensorflow_hub client, which sends no credentials, can download);
every write needs a token whose scope covers it, and a publisher-bound token
writes only to its publisher's models. A missing or unknown token is 401, a
known one without the right is 403. Tokens are read from the
``Authorization: Bearer`` header, or for reads (GET, HEAD) from the web
catalog's sign-in cookie — never from a URL, which ends up in logs. The cookie
counts for reads only: a browser sends it by itself, so it must not be able to
publish or delete (SameSite=Strict already keeps other sites from sending it).

Every route declares what it needs, in its signature or its decorator, as
``Depends(scope("read"))``, ``Depends(scope("publish"))`` (checked against the
path's ``{publisher}``) or ``Depends(scope("admin", every_publisher=True))``
(routes without a publisher, such as token management). FastAPI runs the check
before the route's body, so a route cannot forget it, and
``tests/test_server_routes.py`` fails for a route that declares none.
"""

from __future__ import annotations

from typing import Annotated, Any, Awaitable, Callable, Literal

from fastapi import Path, Request
from starlette.concurrency import run_in_threadpool

from registry.access import Grant
from registry.actor import set_actor
from registry.errors import AccessDenied, AuthenticationRequired
from registry.server.deps import RegistryDep, ServerSettingsDep

Scope = Literal["read", "publish", "admin"]
#: The HttpOnly, SameSite=Strict cookie the web catalog's sign-in form sets (``registry.server.pages``).
TOKEN_COOKIE = "model_registry_token"
#: The attribute a scope dependency carries, naming what it checks (``tests/test_server_routes.py`` reads it).
ACCESS_ATTRIBUTE = "access_rule"
_NEEDS = {"read": "reading this catalog", "publish": "publishing or moving aliases",
          "admin": "deleting versions, managing tokens and webhooks, and reading the audit log"}


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if request.method in ("GET", "HEAD"):
        return request.cookies.get(TOKEN_COOKIE, "").strip() or None
    return None


def open_anonymous_read(request: Request, settings) -> bool:
    """Whether ``request`` is a read that needs no look-up at all: reads are open (no
    ``MODEL_REGISTRY_REQUIRE_READ_TOKEN``) and it carries no credential (a token sent, even to an open
    server, is checked, and a bad one refused). The read check lets such a request through as is, and so
    may the shortcuts that answer before routing (``http_cache``, ``hub_urls``)."""
    return not settings.require_read_token and bearer_token(request) is None


async def caller(request: Request, registry) -> Grant | None:
    """The grant of the request's token; None without one. An unknown or revoked token is refused outright.

    The catalog is asked on a worker thread, and only when a token was sent: an
    anonymous read (the hub client's) costs no lookup and no thread hop. The
    answer is kept on the request, so a second check in one request asks no more.
    """
    if hasattr(request.state, "grant"):
        return request.state.grant
    token = bearer_token(request)
    grant = None
    if token is not None:
        grant = await run_in_threadpool(registry.catalog.tokens.authenticate, token)
        if grant is None:
            raise AuthenticationRequired("the token sent is not valid (unknown or revoked); ask an admin for a new "
                                         "one and set MODEL_REGISTRY_TOKEN")
        # Whatever this request changes is the token's doing (the audit log's actor, ``registry.actor``): set in
        # the request's own context, which the route's worker thread copies.
        set_actor(grant.name, str(request.base_url))
    request.state.grant = grant
    return grant


def check(grant: Grant | None, scope: Scope, *, reads_open: bool, publisher: str | None = None,
          every_publisher: bool = False) -> Grant | None:
    """Refuse unless ``grant`` allows ``scope`` (on ``publisher``'s models, or on every publisher's).

    The decision alone, with no request: ``reads_open`` is the server's setting
    (no read token required).
    """
    if scope == "read" and reads_open:
        return grant
    if grant is None:
        raise AuthenticationRequired(f"{_NEEDS[scope]} needs a token with scope {scope!r}; send it as "
                                     f"'Authorization: Bearer TOKEN' (clients: set MODEL_REGISTRY_TOKEN)")
    if every_publisher and grant.publisher is not None and scope != "read":
        raise AccessDenied(f"token {grant.name!r} is limited to publisher {grant.publisher!r}; {_NEEDS[scope]} "
                           f"needs an {scope} token for every publisher")
    if not grant.allows(scope, publisher):
        if grant.publisher is not None and grant.publisher != publisher and scope != "read":
            raise AccessDenied(f"token {grant.name!r} may write only to publisher {grant.publisher!r}, not "
                               f"{publisher!r}")
        raise AccessDenied(f"token {grant.name!r} has scope {grant.scope!r}; {_NEEDS[scope]} needs scope {scope!r}")
    return grant


def scope(needed: Scope, *, every_publisher: bool = False) -> Callable[..., Awaitable[Grant | None]]:
    """The dependency that lets a request through only with the right to ``needed``; it gives the grant.

    - ``scope("read")``: any valid token, or none when reads are open.
    - ``scope("publish")`` / ``scope("admin")``: on a route with a ``{publisher}``
      path parameter, which a publisher-bound token must match (on a route with
      no publisher in its path every request would fail; ``tests/test_server_routes.py``
      refuses such a route).
    - ``scope(..., every_publisher=True)``: a write over all publishers (token
      management): a publisher-bound token is refused whatever its scope.
    """
    if needed not in _NEEDS:
        raise ValueError(f"unknown scope {needed!r}; scopes are {sorted(_NEEDS)}")
    dependency: Callable[..., Awaitable[Grant | None]]
    if needed == "read":
        async def read_check(request: Request, registry: RegistryDep, settings: ServerSettingsDep) -> Grant | None:
            if open_anonymous_read(request, settings):
                return None  # nothing to look up
            return check(await caller(request, registry), "read", reads_open=not settings.require_read_token)
        dependency = read_check
    elif every_publisher:
        async def every_publisher_check(request: Request, registry: RegistryDep,
                                        settings: ServerSettingsDep) -> Grant | None:
            return check(await caller(request, registry), needed, reads_open=not settings.require_read_token,
                         every_publisher=True)
        dependency = every_publisher_check
    else:
        async def publisher_check(request: Request, registry: RegistryDep, settings: ServerSettingsDep,
                                  publisher: Annotated[str, Path()]) -> Grant | None:
            return check(await caller(request, registry), needed, reads_open=not settings.require_read_token,
                         publisher=publisher)
        dependency = publisher_check
    setattr(dependency, ACCESS_ATTRIBUTE, (needed, "every publisher" if every_publisher or needed == "read"
                                           else "the path's publisher"))
    return dependency


def access_rule(dependency: Callable[..., Any]) -> tuple[str, str] | None:
    """``(scope, on whom)`` if ``dependency`` is a scope check made by ``scope``, else None."""
    return getattr(dependency, ACCESS_ATTRIBUTE, None)


#: The checks routes use, made once (FastAPI caches a dependency's result per request by its callable).
READ = scope("read")
PUBLISH = scope("publish")
ADMIN = scope("admin")
ADMIN_EVERY_PUBLISHER = scope("admin", every_publisher=True)
