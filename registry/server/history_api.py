"""The JSON API of what happened and who is told: the audit log, alias history, webhooks.

``/api/v1/audit`` and ``/api/v1/webhooks`` are an admin's (a token of scope admin for
every publisher); an alias's history is a read. Like ``registry.server.api_v1``, each
route is a thin shell over the registry (``Registry.audit``, ``alias_history``,
``webhooks``), declares its access check, and lets typed errors through to the
app's handlers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse

from registry.errors import HandleError
from registry.server.auth import ADMIN_EVERY_PUBLISHER, READ
from registry.server.deps import RegistryDep, handle_for, utc_instant

router = APIRouter(prefix="/api/v1")

#: Most entries one page of the audit log returns.
MAX_PAGE = 1000


@router.get("/audit", summary="The audit log, newest first (keyset-paginated by entry id)",
            dependencies=[Depends(ADMIN_EVERY_PUBLISHER)])
def audit(registry: RegistryDep, since: datetime | None = None, until: datetime | None = None,
          model: str | None = None, actor: str | None = None, action: str | None = None, limit: int = 100,
          after: str | None = None):
    """``since``/``until`` are ISO 8601 (UTC unless they name a zone); ``model`` is ``publisher/model`` or a
    publisher; ``action`` an action (``alias.moved``) or a family (``alias``); ``after`` the previous page's
    ``next``."""
    if not 1 <= limit <= MAX_PAGE:
        raise HandleError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    entries = registry.audit(since=utc_instant(since), until=utc_instant(until), model=model, actor=actor,
                             action=action, limit=limit + 1, after=after)
    page = entries[:limit]
    return {"items": [entry.model_dump(mode="json") for entry in page],
            "next": str(page[-1].id) if len(entries) > limit else None}


@router.get("/models/{publisher}/{model}/aliases/{alias}/history",
            summary="Every version an alias has named, oldest first, with its interval and who moved it",
            dependencies=[Depends(READ)])
def alias_history(registry: RegistryDep, publisher: str, model: str, alias: str):
    intervals = registry.alias_history(handle_for(publisher, model, f"@{alias}"))
    return {"items": [interval.model_dump(mode="json") for interval in intervals]}


@router.get("/models/{publisher}/{model}/downloads",
            summary="Archives served of each of the model's versions (counted by the servers, written every few s)",
            dependencies=[Depends(READ)])
def downloads(registry: RegistryDep, publisher: str, model: str):
    counts = registry.download_counts(f"{publisher}/{model}")
    return {"versions": {str(version): n for version, n in sorted(counts.items())}, "total": sum(counts.values())}


# -- webhooks ------------------------------------------------------------------------------------------------------

@router.get("/webhooks", summary="The webhooks (never their secrets)", dependencies=[Depends(ADMIN_EVERY_PUBLISHER)])
def list_webhooks(registry: RegistryDep):
    return {"items": [hook.model_dump(mode="json") for hook in registry.webhooks.list()]}


@router.post("/webhooks", status_code=201,
             summary="Add a webhook; the response is the only time its signing secret is shown",
             dependencies=[Depends(ADMIN_EVERY_PUBLISHER)])
def add_webhook(registry: RegistryDep, body: Annotated[dict[str, Any], Body(examples=[
        {"url": "https://deploy.example.com/hooks/registry", "events": ["version.published", "alias.moved"],
         "publisher": "vision"}])]):
    events = body.get("events") if isinstance(body, dict) else None
    if (not isinstance(body, dict) or not isinstance(body.get("url"), str) or not isinstance(events, list)
            or not all(isinstance(event, str) for event in events)
            or not isinstance(body.get("publisher") or "", str)):
        raise HandleError('the body must be {"url": URL, "events": [EVENT, ...], "publisher": P?}')
    secret, hook = registry.webhooks.add(body["url"], events=events, publisher=body.get("publisher") or None)
    return JSONResponse({"secret": secret, **hook.model_dump(mode="json")}, status_code=201)


@router.delete("/webhooks/{hook_id}", summary="Remove a webhook (what is pending for it is not sent)",
               dependencies=[Depends(ADMIN_EVERY_PUBLISHER)])
def remove_webhook(registry: RegistryDep, hook_id: int):
    return registry.webhooks.remove(hook_id).model_dump(mode="json")


@router.post("/webhooks/{hook_id}/enable", summary="Enable a webhook that failures disabled",
             dependencies=[Depends(ADMIN_EVERY_PUBLISHER)])
def enable_webhook(registry: RegistryDep, hook_id: int):
    return registry.webhooks.enable(hook_id).model_dump(mode="json")


@router.post("/webhooks/{hook_id}/test", status_code=202, summary="Queue a webhook.test message to the hook",
             dependencies=[Depends(ADMIN_EVERY_PUBLISHER)])
def test_webhook(registry: RegistryDep, hook_id: int):
    return JSONResponse({"message_id": registry.webhooks.test(hook_id)}, status_code=202)


@router.get("/webhooks/{hook_id}/deliveries", summary="The hook's delivery log, newest first",
            dependencies=[Depends(ADMIN_EVERY_PUBLISHER)])
def webhook_deliveries(registry: RegistryDep, hook_id: int, limit: int = 100):
    if not 1 <= limit <= MAX_PAGE:
        raise HandleError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    return {"items": [attempt.model_dump(mode="json") for attempt in registry.webhooks.attempts(hook_id,
                                                                                                limit=limit)]}
