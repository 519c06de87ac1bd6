"""Access scopes and tokens, as values: what a token may do, with no database involved.

The server checks grants (``registry.server.auth``); the catalog stores tokens
as hashes (``registry.catalog.tokens``); the CLI offers the scopes. All three
share these definitions, which import nothing heavy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

#: Each scope includes the ones before it: read < publish < admin.
SCOPES = ("read", "publish", "admin")
#: Every token starts with this, so a leaked one is recognisable in logs and by secret scanners.
TOKEN_PREFIX = "mrt_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def scope_allows(granted: str, needed: str) -> bool:
    """Whether a token of scope ``granted`` may do what needs ``needed``."""
    return SCOPES.index(granted) >= SCOPES.index(needed)


@dataclass(frozen=True)
class Grant:
    """Who a valid token speaks for: its name, scope and (optionally) the one publisher it may write to."""

    name: str
    scope: str
    publisher: str | None = None

    def allows(self, needed: str, publisher: str | None = None) -> bool:
        if not scope_allows(self.scope, needed):
            return False
        return needed == "read" or self.publisher is None or self.publisher == publisher
