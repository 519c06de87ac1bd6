"""Server access tokens, kept in the catalog database as hashes.

A token is shown once, when created, and only its sha256 is stored: someone
who reads the database (or a backup of it) cannot use what they read. Tokens
are 32 random bytes, so an unsalted fast hash is enough — there is nothing to
guess. Looking a token up goes through the unique index on its hash and the
stored hash is compared in constant time anyway, so a timing difference can
tell an attacker nothing about a token's bytes.
"""

from __future__ import annotations

import hmac
import secrets

from sqlmodel import col, select

from registry.access import SCOPES, TOKEN_PREFIX, Grant, hash_token
from registry.catalog.changes import record_change
from registry.catalog.models import ApiToken, TokenPublic, utcnow
from registry.errors import CatalogError
from registry.handles import validate_name


class TokenStore:
    """Create, list, revoke and check tokens in a ``registry.catalog.store.Catalog``'s database."""

    def __init__(self, catalog):
        self.catalog = catalog

    def create(self, *, name: str, scope: str, publisher: str | None = None) -> tuple[str, TokenPublic]:
        """A new token and its public record; the token is not kept anywhere, so show it now or lose it."""
        validate_name(name, "token name")
        if scope not in SCOPES:
            raise CatalogError(f"a token's scope is one of {', '.join(SCOPES)}, not {scope!r}")
        if publisher is not None:
            validate_name(publisher, "publisher")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.catalog._write() as session:
            if self._active(session, name) is not None:
                raise CatalogError(f"a token named {name!r} exists; revoke it first (`model-registry token revoke "
                                   f"{name}`) or choose another name")
            row = ApiToken(name=name, scope=scope, publisher=publisher, token_hash=hash_token(token))
            session.add(row)
            session.flush()
            record_change(session, "token.created", f"token:{name}", publisher=publisher, after=_audit_state(row))
            return token, _public(row)

    def list(self, *, include_revoked: bool = False) -> list[TokenPublic]:
        with self.catalog._read() as session:
            statement = select(ApiToken).order_by(col(ApiToken.name), col(ApiToken.created_at))
            if not include_revoked:
                statement = statement.where(col(ApiToken.revoked_at).is_(None))
            return [_public(row) for row in session.exec(statement)]

    def revoke(self, name: str) -> TokenPublic:
        """Revoke the live token of that name: it stops working at once, on every server process."""
        with self.catalog._write() as session:
            row = self._active(session, name)
            if row is None:
                raise CatalogError(f"no live token is named {name!r}; `model-registry token list` shows them")
            before = _audit_state(row)
            row.revoked_at = utcnow()
            session.flush()
            record_change(session, "token.revoked", f"token:{name}", publisher=row.publisher, before=before,
                          after=_audit_state(row))
            return _public(row)

    def authenticate(self, token: str) -> Grant | None:
        """The grant of a live token, or None for an unknown or revoked one."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 256:
            return None
        digest = hash_token(token)
        with self.catalog._read() as session:
            row = session.exec(select(ApiToken).where(ApiToken.token_hash == digest)).first()
            if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at is not None:
                return None
            return Grant(name=row.name, scope=row.scope, publisher=row.publisher)

    @staticmethod
    def _active(session, name: str) -> ApiToken | None:
        return session.exec(select(ApiToken).where(ApiToken.name == name,
                                                   col(ApiToken.revoked_at).is_(None))).first()


def _public(row: ApiToken) -> TokenPublic:
    return TokenPublic(name=row.name, scope=row.scope, publisher=row.publisher, created_at=row.created_at,
                       revoked=row.revoked_at is not None)


def _audit_state(row: ApiToken) -> dict:
    """What the audit log says of a token: its name, scope and publisher — never the token or its hash."""
    return {"name": row.name, "scope": row.scope, "publisher": row.publisher, "revoked": row.revoked_at is not None}
