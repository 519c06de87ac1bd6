"""How the registry's typed errors travel over HTTP, both ways (server and client share this table).

The server answers every refusal as JSON ``{"error": code, "message": text,
"type": class name}`` with a fitting status, and never a stack trace. The
client (``registry.client``) turns ``type`` back into the same
``registry.errors`` class a local call raises, so code written against the
library behaves the same against a server.
"""

from __future__ import annotations

from registry import errors

#: (status, code) per error class; the most specific class listed wins (looked up along the MRO).
STATUS: dict[type[errors.RegistryError], tuple[int, str]] = {
    errors.HandleError: (400, "bad_handle"),
    errors.QueryError: (400, "bad_query"),
    errors.UnknownMode: (400, "bad_request"),
    errors.AuthenticationRequired: (401, "unauthorized"),
    errors.AccessDenied: (403, "forbidden"),
    errors.CatalogReadOnly: (503, "read_only"),
    errors.ModelNotFound: (404, "not_found"),
    errors.VersionNotFound: (404, "not_found"),
    errors.ArtifactNotFound: (404, "not_found"),
    errors.LegacyHandleConflict: (409, "conflict"),
    errors.CatalogError: (409, "conflict"),
    errors.MetadataError: (422, "invalid"),
    errors.UploadTooLarge: (413, "too_large"),
    errors.UploadStalled: (408, "timeout"),
    errors.StorageFull: (507, "storage_full"),
    errors.UnsupportedOperation: (422, "unsupported"),
    errors.FormatError: (422, "refused"),
    errors.SignatureError: (422, "refused"),
    errors.IntegrityError: (422, "refused"),
    errors.UnsafeArchive: (422, "refused"),
    errors.ArtifactError: (422, "refused"),
    errors.CatalogBusy: (503, "busy"),
    errors.CatalogUnavailable: (503, "unavailable"),
    errors.ClientUnavailable: (503, "unavailable"),
    errors.SchemaError: (503, "unavailable"),
    errors.OfflineError: (503, "unavailable"),
    errors.ServerError: (502, "bad_gateway"),
    errors.RegistryError: (400, "bad_request"),
}


def status_of(error: errors.RegistryError) -> tuple[int, str]:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400, "bad_request"


def error_body(error: errors.RegistryError) -> dict:
    body: dict[str, str | None] = {
        "error": status_of(error)[1], "message": str(error), "type": _public_type(type(error))}
    if isinstance(error, errors.UnsupportedOperation):
        body.update(format=error.format, operation=error.operation, mode=error.mode, alternative=error.alternative)
    return body


def _public_type(cls: type) -> str:
    """The nearest ``registry.errors`` class (plugins' own subclasses travel as their registry base)."""
    for base in cls.__mro__:
        if getattr(errors, base.__name__, None) is base:
            return base.__name__
    return "RegistryError"


def error_from_body(status: int, body: dict | None, *, fallback: str) -> errors.RegistryError:
    """The ``registry.errors`` instance a server's JSON error stands for."""
    body = body if isinstance(body, dict) else {}
    message = str(body.get("message") or fallback)
    cls = getattr(errors, str(body.get("type", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.RegistryError)):
        cls = _class_for_status(status)
    if cls is errors.UnsupportedOperation:
        return errors.UnsupportedOperation(message, format=body.get("format", ""), operation=body.get("operation", ""),
                                           mode=body.get("mode", ""), alternative=body.get("alternative"))
    return cls(message)


def _class_for_status(status: int) -> type[errors.RegistryError]:
    return {400: errors.RegistryError, 401: errors.AuthenticationRequired, 403: errors.AccessDenied,
            404: errors.VersionNotFound, 408: errors.UploadStalled,
            409: errors.CatalogError, 413: errors.UploadTooLarge,
            422: errors.ArtifactError, 507: errors.StorageFull}.get(status, errors.ServerError)
