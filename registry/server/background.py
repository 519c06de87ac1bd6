"""A server process's work off the request path: delivering webhooks, and writing download counts.

Each server process (every uvicorn worker) runs one ``Background`` thread from
start-up to shut-down. It

* claims due webhook deliveries and sends them (``registry.catalog.webhooks``:
  the claim is what keeps several processes from sending the same attempt; a
  process killed mid-send leaves a lease another one takes over when it expires),
  signing each attempt with the Standard Webhooks scheme through the
  ``standardwebhooks`` library, and never following a redirect;
* adds the downloads counted in memory (``DownloadCounter``) to the catalog every
  ``FLUSH_S`` seconds and once more at shut-down, in one transaction each — so
  serving an archive costs a dictionary increment, never a database write. Counts
  of a process killed with SIGKILL since its last flush are lost (at most
  ``FLUSH_S`` seconds' worth).
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from registry.errors import RegistryError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from registry.catalog.interface import VersionLocation
    from registry.catalog.webhooks import Claimed, WebhookStore

logger = logging.getLogger("registry.server.background")

#: Seconds between looks for due webhook deliveries.
POLL_S = 0.5
#: Seconds between writes of the download counts.
FLUSH_S = 10.0
#: Deliveries sent at the same time by one process.
SENDERS = 4
#: The most of a receiver's answer read (and kept in the delivery log: its status only).
MAX_ANSWER_BYTES = 64 << 10


class DownloadCounter:
    """Downloads per version per day (UTC), counted in memory; ``flush`` adds them to the catalog."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: defaultdict[tuple[str, str, int], defaultdict[date, int]] = defaultdict(
            lambda: defaultdict(int))

    def count(self, location: "VersionLocation") -> None:
        """One archive of ``location`` was served completely."""
        day = datetime.now(timezone.utc).date()
        with self._lock:
            self._counts[(location.publisher, location.model, location.version)][day] += 1

    def pending(self) -> int:
        with self._lock:
            return sum(n for days in self._counts.values() for n in days.values())

    def flush(self, catalog) -> int:
        """Add what was counted since the last flush to ``catalog``'s totals; kept for next time if that fails."""
        from registry.catalog import downloads

        with self._lock:
            counts, self._counts = self._counts, defaultdict(lambda: defaultdict(int))
        if not counts:
            return 0
        try:
            return downloads.add(catalog, counts)
        except BaseException:
            with self._lock:
                for key, days in counts.items():
                    for day, n in days.items():
                        self._counts[key][day] += n
            raise


def send(claimed: "Claimed", *, allow: tuple[str, ...]) -> tuple[int | None, str | None, int]:
    """One signed POST of a claimed delivery: (HTTP status or None, what went wrong or None, milliseconds)."""
    from standardwebhooks import Webhook as Signer

    from registry.catalog.webhooks import SEND_TIMEOUT_S, check_destination

    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        check_destination(claimed.url, allow)
    except RegistryError as error:
        return None, f"not sent: {error}", elapsed()
    body = json.dumps(claimed.payload, separators=(",", ":"), sort_keys=True)
    now = datetime.now(timezone.utc)
    headers = {"webhook-id": claimed.message_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Signer(claimed.secret).sign(claimed.message_id, now, body),
               "Content-Type": "application/json", "User-Agent": "model-registry-webhooks/1"}
    parts = urlsplit(claimed.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=SEND_TIMEOUT_S,
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=SEND_TIMEOUT_S)
    try:
        connection.request("POST", target, body=body.encode("utf-8"), headers=headers)
        answer = connection.getresponse()
        answer.read(MAX_ANSWER_BYTES)
        status = answer.status
    except (OSError, http.client.HTTPException) as error:
        return None, f"{type(error).__name__}: {error}"[:500], elapsed()
    finally:
        connection.close()
    if 300 <= status < 400:
        return status, f"the receiver answered HTTP {status} (a redirect, which is not followed)", elapsed()
    if not 200 <= status < 300:
        return status, f"the receiver answered HTTP {status}", elapsed()
    return status, None, elapsed()


class Background:
    """The thread that delivers webhooks and flushes download counts for one server process."""

    def __init__(self, registry, counter: DownloadCounter | None, *, poll_s: float = POLL_S,
                 flush_s: float = FLUSH_S):
        self.registry = registry
        self.counter = counter
        self.poll_s = poll_s
        self.flush_s = flush_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._senders = ThreadPoolExecutor(SENDERS, thread_name_prefix="webhook-sender")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="registry-background", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop looking for work, finish what is being sent, and write the counts one last time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._senders.shutdown(wait=True)
        self._flush()

    def _webhooks(self) -> "WebhookStore | None":
        from registry.catalog.webhooks import WebhookStore

        try:
            hooks = self.registry.webhooks
        except RegistryError:
            return None  # a catalog that keeps no webhooks (not a database): nothing to deliver
        return hooks if isinstance(hooks, WebhookStore) else None

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_s
        while not self._stop.wait(self.poll_s):
            try:
                self.deliver_due()
                if time.monotonic() >= next_flush:
                    self._flush()
                    next_flush = time.monotonic() + self.flush_s
            except Exception:  # the thread outlives any one failure; the next round tries again
                logger.exception("background work failed; trying again in %.1f s", self.poll_s)

    def deliver_due(self) -> int:
        """Claim the due deliveries, send them (``SENDERS`` at a time) and record each attempt; how many."""
        hooks = self._webhooks()
        if hooks is None:
            return 0
        try:
            claimed = hooks.claim(limit=SENDERS)  # no more than are sent at once: a lease runs while it waits
        except RegistryError as error:
            logger.warning("could not claim webhook deliveries: %s", error)
            return 0
        outcomes = self._senders.map(lambda c: send(c, allow=hooks.policy.allow), claimed)
        item: Claimed
        for item, (status, problem, duration_ms) in zip(claimed, outcomes, strict=True):
            try:
                hooks.finish(item, status_code=status, error=problem, duration_ms=duration_ms)
            except RegistryError as failure:
                # The lease expires and another attempt follows: at least once, never lost.
                logger.warning("could not record webhook attempt %s: %s", item.message_id, failure)
        return len(claimed)

    def _flush(self) -> None:
        store = getattr(self.registry.catalog, "store", None)
        if store is None or self.counter is None:
            return
        try:
            self.counter.flush(store)
        except RegistryError as error:
            logger.warning("could not write download counts (kept for the next flush): %s", error)


def install(app: "FastAPI", registry) -> None:
    """Give ``app`` a download counter (``app.state.downloads``; None when the registry's settings turn counting
    off) and run a ``Background`` over ``registry`` while it serves."""
    counting = getattr(getattr(registry, "settings", None), "count_downloads", True)
    app.state.downloads = DownloadCounter() if counting else None
    worker = Background(registry, app.state.downloads)
    app.state.background = worker
    app.router.on_startup.append(worker.start)
    app.router.on_shutdown.append(worker.stop)
