"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 that verifies every message's signature with
the ``standardwebhooks`` reference library and keeps what it received."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

from tests.services import LOCALHOST, free_port


class Receiver:
    """Start with ``start()``; ``answer`` is the HTTP status it replies with (a 3xx carries a Location)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.secret: str | None = None
        self.answer = 204
        self.messages: list[dict] = []  # each: {"id", "type", "body", "verified"}
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}/hooks/registry"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802  (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                try:
                    Webhook(receiver.secret).verify(body, dict(self.headers))
                    verified = True
                except WebhookVerificationError:
                    verified = False
                payload = json.loads(body)
                with receiver.lock:
                    receiver.messages.append({"id": self.headers["webhook-id"], "type": payload["type"],
                                              "body": payload, "verified": verified, "raw": body,
                                              "headers": dict(self.headers)})
                self.send_response(receiver.answer)
                if 300 <= receiver.answer < 400:
                    self.send_header("Location", f"http://{LOCALHOST}:{receiver.port}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer((LOCALHOST, self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, predicate, *, timeout: float = 60) -> list[dict]:
        """Wait until ``predicate(messages)`` holds; the messages then (fails the test after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = list(self.messages)
            if predicate(got):
                return got
            time.sleep(0.2)
        raise AssertionError(f"the receiver did not get what was expected in {timeout} s; it got "
                             f"{[(m['id'], m['type']) for m in got]}")

    def unique(self) -> dict[str, dict]:
        """The messages by ``webhook-id`` (de-duplicated, as a receiver of at-least-once deliveries does)."""
        with self.lock:
            return {m["id"]: m for m in self.messages}
