"""The server's own part of the settings: what a request's handling needs besides the registry.

Every value is read from the environment with everything else, in
``registry.config.Settings`` (``MODEL_REGISTRY_REQUIRE_READ_TOKEN``,
``MODEL_REGISTRY_MAX_UPLOAD_BYTES``, ``MODEL_REGISTRY_UPLOAD_IDLE_TIMEOUT``,
``MODEL_REGISTRY_UPLOAD_MIN_RATE``, ``MODEL_REGISTRY_DOWNLOADS``,
``MODEL_REGISTRY_ACCEL_REDIRECT``); this record only carries them to the routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from registry.config import DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_UPLOAD_IDLE_TIMEOUT_S, DEFAULT_UPLOAD_MIN_RATE, Settings

if TYPE_CHECKING:
    from collections.abc import Mapping


class ServerSettings(NamedTuple):
    #: Reads (API, model URLs, pages) need a token of any scope; writes always need one.
    require_read_token: bool = False
    #: Uploads larger than this are refused with 413 before their bytes are read.
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    #: An upload that sends nothing for this many seconds is dropped (408), its work directory removed.
    upload_idle_timeout: float = DEFAULT_UPLOAD_IDLE_TIMEOUT_S
    #: ... and so is one averaging fewer bytes a second than this, once it has run ``upload_idle_timeout`` seconds.
    upload_min_rate: float = DEFAULT_UPLOAD_MIN_RATE
    #: How a model URL delivers an archive: "redirect", "proxy", or None (redirect where the storage can sign).
    downloads: str | None = None
    #: The nginx location prefix of the storage folder for ``X-Accel-Redirect``, or None (the server sends the file).
    accel_redirect: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "ServerSettings":
        return cls(require_read_token=settings.require_read_token, max_upload_bytes=settings.max_upload_bytes,
                   upload_idle_timeout=settings.upload_idle_timeout, upload_min_rate=settings.upload_min_rate,
                   downloads=settings.downloads, accel_redirect=settings.accel_redirect)

    @classmethod
    def from_env(cls, environ: "Mapping[str, str] | None" = None) -> "ServerSettings":
        """The server's settings from the environment, as ``registry.config`` reads it."""
        return cls.from_settings(Settings.from_env(environ))
