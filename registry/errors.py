"""The registry's typed errors.

Every error a user can cause is one of these. Each class also subclasses the
built-in exception it refines, so callers that catch ``ValueError`` or
``LookupError`` keep working, and each message says what to do next. The CLI
prints ``str(error)`` on one line and exits non-zero; no traceback reaches a user.
"""

from __future__ import annotations

import errno


class RegistryError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(RegistryError, ValueError):
    """A setting (a ``MODEL_REGISTRY_*`` variable) has a value the registry cannot use; the message names both."""


class HandleError(RegistryError, ValueError):
    """A string is not a handle this registry understands."""


class QueryError(RegistryError, ValueError):
    """A search or listing parameter has a value the catalog cannot use (a sort it does not know, a page out of
    range, an image size it cannot read); the message names the parameter and what it takes."""


class ModelNotFound(RegistryError, LookupError):
    """The catalog has no model of that publisher and name."""


class VersionNotFound(RegistryError, LookupError):
    """The model exists, but not that version or alias (or the version was deleted)."""


class UnsupportedOperation(RegistryError, NotImplementedError):
    """A cell of the compatibility matrix that is not supported was asked for."""

    def __init__(self, message: str, *, format: str, operation: str, mode: str, alternative: str | None = None):
        super().__init__(message)
        self.format = format
        self.operation = operation
        self.mode = mode
        self.alternative = alternative


class ModeError(RegistryError, RuntimeError):
    """The TensorFlow execution mode does not match the mode asked for (graph vs. eager)."""


class UnknownMode(RegistryError, ValueError):
    """A ``mode`` argument that is neither "tf1" nor "tf2"."""


class FormatError(RegistryError, ValueError):
    """A directory is not a model in any registered format, or its format files are invalid."""


class SignatureError(RegistryError, ValueError):
    """Inputs do not match a signature, or a model does not implement a signature it claims."""


class IntegrityError(RegistryError, ValueError):
    """Downloaded or cached bytes do not match the recorded sha256."""


class ArtifactError(RegistryError, OSError):
    """An artifact cannot be read: corrupt, truncated or not a model archive."""


class ArtifactNotFound(ArtifactError, FileNotFoundError):
    """The storage has no artifact at the recorded or given location."""


class UnsafeArchive(ArtifactError):
    """An archive member would escape the extraction directory (absolute path, '..', link, device)."""


class OfflineError(RegistryError, ConnectionError):
    """Offline mode is on and the handle is not in the local cache."""


class CatalogError(RegistryError, ValueError):
    """A catalog operation that the catalog's rules forbid (a reserved alias, a bad parent...)."""


class ConversionError(RegistryError, ValueError):
    """A model cannot be converted as asked: its adapter refuses what the model holds. Nothing was published."""


class UnsupportedConversion(ConversionError):
    """The model's format converts to no other format, or not to the one asked for (``FormatAdapter.conversions``)."""


class MetadataError(RegistryError, ValueError):
    """What a publisher says about a version (description, licence...) or a search filter on it is invalid."""


class ClientUnavailable(RegistryError, RuntimeError):
    """The server cannot make its client wheel for ``/simple/`` (no source tree, no installed files to pack)."""


class CatalogUnavailable(RegistryError, ConnectionError):
    """The catalog database cannot be reached or opened (server down, missing directory, bad credentials)."""


class CatalogBusy(CatalogUnavailable):
    """Another process holds the catalog's write lock for longer than the configured wait."""


class CatalogReadOnly(RegistryError, PermissionError):
    """A write was asked of a catalog that can only be read (read-only file, directory or server role)."""


class SchemaError(RegistryError, RuntimeError):
    """The catalog database's schema is not the one this code expects."""


class PluginError(RegistryError, RuntimeError):
    """A plugin misbehaved: two adapters claim one format name, a hook returned nonsense."""


class AccessDenied(RegistryError, PermissionError):
    """The server refused the call: the token lacks the scope or the publisher it needs (HTTP 403)."""


class AuthenticationRequired(AccessDenied):
    """The server needs a token for this call and got none, or one it does not know (HTTP 401)."""


class UploadTooLarge(ArtifactError):
    """An upload is bigger than the server's limit (``MODEL_REGISTRY_MAX_UPLOAD_BYTES``; HTTP 413)."""


class ServerError(RegistryError, ConnectionError):
    """The registry server (``MODEL_REGISTRY_URL``) cannot be reached, or answered something unexpected."""


class CorruptArchive(ArtifactError):
    """An archive's bytes are not a well-formed ``.tar.gz``: a bad header, a short member, no end, trailing bytes."""


class ArchiveTooLarge(UnsafeArchive):
    """An archive expands beyond the configured bounds (size, compression ratio, members, name length)."""


class NotARegularFile(ArtifactError):
    """A model directory holds something that is neither a regular file nor a directory (FIFO, device, bad link)."""


class TransferStalled(ArtifactError, TimeoutError):
    """A download received no bytes for longer than ``MODEL_REGISTRY_STALL_TIMEOUT`` seconds."""


class UploadStalled(TransferStalled):
    """An upload's body sent nothing for ``MODEL_REGISTRY_UPLOAD_IDLE_TIMEOUT`` seconds, or came slower than
    ``MODEL_REGISTRY_UPLOAD_MIN_RATE`` bytes a second (HTTP 408); the server dropped it and what it had received."""


class CacheBusy(RegistryError, TimeoutError):
    """Another process kept fetching the same artifact for longer than ``MODEL_REGISTRY_LOCK_TIMEOUT`` seconds."""


class StorageFull(RegistryError, OSError):
    """A disk has no room left (``ENOSPC``/``EDQUOT``): the artifact storage, the server's cache or the local cache
    (HTTP 507). What was being written is removed; free space (``model-registry cache prune``) and try again."""

    def __init__(self, message: str):
        super().__init__(message)
        self.errno = errno.ENOSPC


#: The ``errno`` values of a full disk or an exhausted quota.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` is an ``OSError`` saying a disk or quota is full (and not already a ``StorageFull``)."""
    return isinstance(error, OSError) and not isinstance(error, StorageFull) and error.errno in DISK_FULL_ERRNOS


class LegacyHandleError(HandleError):
    """A string is not a legacy model handle (tfhub.dev, its mirrors and bucket, Kaggle) this registry can
    normalise: the message names the families and their shapes (``registry.legacy.handles``)."""


class LegacyHandleConflict(CatalogError):
    """A legacy handle is already recorded for another version: each one names exactly one version (HTTP 409)."""


class CacheEntryRefused(ArtifactError):
    """A ``TFHUB_CACHE_DIR`` entry cannot be used: empty, left half-written (a ``.lock`` or ``.tmp``), or its
    descriptor missing or garbled; ``reason`` is one of ``registry.legacy.tfhub_cache.REFUSALS``."""

    def __init__(self, message: str, *, reason: str = ""):
        super().__init__(message)
        self.reason = reason
