"""Who is calling: bearer tokens checked against the catalog, and the scope each route needs.

Reads are open unless ``MODEL_REGISTRY_REQUIRE_READ_TOKEN`` is set (so the
unmodified tensorflow_hub client, which sends no credentials, can download);
every write needs a token whose scope covers it, and a publisher-bound token
writes only to its publisher's models. A missing or unknown token is 401, a
known one without the right is 403. Tokens are read from the
``Authorization: Bearer`` header, or for reads (GET, HEAD) from the web
catalog's sign-in cookie — never from a URL, which ends up in logs. The cookie
counts for reads only: a browser sends it by itself, so it must not be able to
publish or delete (SameSite=Strict already keeps other sites from sending it).
"""

from __future__ import annotations

from fastapi import Request

from registry.access import Grant
from registry.errors import AccessDenied, AuthenticationRequired

_UNSET = object()
#: The HttpOnly, SameSite=Strict cookie the web catalog's sign-in form sets (``registry.server.pages``).
TOKEN_COOKIE = "model_registry_token"
_NEEDS = {"read": "reading this catalog", "publish": "publishing or moving aliases",
          "admin": "deleting versions and managing tokens"}


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if request.method in ("GET", "HEAD"):
        return request.cookies.get(TOKEN_COOKIE, "").strip() or None
    return None


def caller(request: Request) -> Grant | None:
    """The grant of the request's token; None without one. An unknown or revoked token is refused outright."""
    cached = getattr(request.state, "grant", _UNSET)
    if cached is not _UNSET:
        return cached
    token = bearer_token(request)
    grant = None
    if token is not None:
        grant = request.app.state.registry.catalog.tokens.authenticate(token)
        if grant is None:
            raise AuthenticationRequired("the token sent is not valid (unknown or revoked); ask an admin for a new "
                                         "one and set MODEL_REGISTRY_TOKEN")
    request.state.grant = grant
    return grant


def require(request: Request, scope: str, *, publisher: str | None = None,
            any_publisher: bool = False) -> Grant | None:
    """Refuse the request unless its token allows ``scope`` (on ``publisher``'s models, for writes)."""
    grant = caller(request)
    if scope == "read" and not request.app.state.server_settings.require_read_token:
        return grant
    if grant is None:
        raise AuthenticationRequired(f"{_NEEDS[scope]} needs a token with scope {scope!r}; send it as "
                                     f"'Authorization: Bearer TOKEN' (clients: set MODEL_REGISTRY_TOKEN)")
    if any_publisher and grant.publisher is not None and scope != "read":
        raise AccessDenied(f"token {grant.name!r} is limited to publisher {grant.publisher!r}; {_NEEDS[scope]} "
                           f"needs an {scope} token for every publisher")
    if not grant.allows(scope, publisher):
        if grant.publisher is not None and grant.publisher != publisher and scope != "read":
            raise AccessDenied(f"token {grant.name!r} may write only to publisher {grant.publisher!r}, not "
                               f"{publisher!r}")
        raise AccessDenied(f"token {grant.name!r} has scope {grant.scope!r}; {_NEEDS[scope]} needs scope {scope!r}")
    return grant
