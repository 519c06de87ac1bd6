"""Webhook administration through a registry server (needs an admin token): the ``WebhookStore`` methods."""

from __future__ import annotations

from registry.client.connection import ServerConnection, quoted


class RemoteWebhooks:
    """``registry.catalog.webhooks.WebhookStore``'s administration, over ``/api/v1/webhooks``."""

    def __init__(self, connection: ServerConnection):
        self.connection = connection

    def add(self, url: str, *, events, publisher: str | None = None):
        from registry.catalog.webhooks import WebhookPublic

        body = self.connection.call("POST", "/api/v1/webhooks", body={"url": url, "events": list(events),
                                                                      "publisher": publisher})
        return body.pop("secret"), WebhookPublic.model_validate(body)

    def list(self, *, include_removed: bool = False):
        from registry.catalog.webhooks import WebhookPublic

        return [WebhookPublic.model_validate(item) for item in
                self.connection.call("GET", "/api/v1/webhooks")["items"]]

    def remove(self, hook_id: int):
        from registry.catalog.webhooks import WebhookPublic

        return WebhookPublic.model_validate(self.connection.call("DELETE", quoted("api", "v1", "webhooks",
                                                                                  str(hook_id))))

    def enable(self, hook_id: int):
        from registry.catalog.webhooks import WebhookPublic

        return WebhookPublic.model_validate(self.connection.call("POST", quoted("api", "v1", "webhooks",
                                                                                str(hook_id), "enable")))

    def test(self, hook_id: int) -> str:
        return self.connection.call("POST", quoted("api", "v1", "webhooks", str(hook_id), "test"))["message_id"]

    def attempts(self, hook_id: int, *, limit: int = 100):
        from registry.catalog.webhooks import AttemptPublic

        body = self.connection.call("GET", quoted("api", "v1", "webhooks", str(hook_id), "deliveries"),
                                    params={"limit": limit})
        return [AttemptPublic.model_validate(item) for item in body["items"]]
