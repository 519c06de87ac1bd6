"""What a server process reads from its environment, besides the registry's own settings."""

from __future__ import annotations

import os
from dataclasses import dataclass

from registry.config import MAX_UPLOAD_BYTES_ENV, REQUIRE_READ_TOKEN_ENV, _truthy

DEFAULT_MAX_UPLOAD_BYTES = 8 << 30


@dataclass(frozen=True)
class ServerSettings:
    #: Reads (API, model URLs, pages) need a token of any scope; writes always need one.
    require_read_token: bool = False
    #: Uploads larger than this are refused with 413 before their bytes are read.
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "ServerSettings":
        env = os.environ if environ is None else environ
        raw = (env.get(MAX_UPLOAD_BYTES_ENV) or "").strip()
        try:
            limit = int(raw) if raw else DEFAULT_MAX_UPLOAD_BYTES
        except ValueError:
            limit = DEFAULT_MAX_UPLOAD_BYTES
        return cls(require_read_token=_truthy(env.get(REQUIRE_READ_TOKEN_ENV)),
                   max_upload_bytes=limit if limit > 0 else DEFAULT_MAX_UPLOAD_BYTES)
