"""Eight processes publishing one model at once: no collision, no lost version, no "database is locked".

Each process opens its own ``Catalog`` (on SQLite the file does not exist yet,
so they also race to create it) and, once all are ready, publishes versions of
a model nobody has created. The numbers handed out must be exactly 1..N, and
each number must hold the artifact of the process that got it.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback

import pytest

from registry.catalog import Catalog
from registry.catalog.models import VersionCreate
from registry.handles import parse

PROCESSES = 8
VERSIONS_EACH = 2
START_TIMEOUT_S = 300


def _publisher(database_url: str, worker: int, barrier, results) -> None:
    """Runs in a spawned process: open the catalog, wait for everyone, publish."""
    try:
        with Catalog(database_url) as catalog:
            barrier.wait(timeout=START_TIMEOUT_S)
            numbers = []
            for attempt in range(VERSIONS_EACH):
                version = catalog.create_version(VersionCreate(
                    publisher="race", name="model", format="tf2_saved_model",
                    artifact_uri=f"memory://artifacts/worker-{worker}-{attempt}.tar.gz", sha256=f"{worker:064x}",
                    size=worker, tag_sets=[[]], signatures=[], description=f"from worker {worker}"))
                numbers.append((version.version, version.artifact_uri))
        results.put((worker, "ok", numbers))
    except BaseException:
        results.put((worker, "error", traceback.format_exc()))



@pytest.mark.slow
def test_concurrent_publishers_get_distinct_consecutive_versions(database_url):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [context.Process(target=_publisher, args=(database_url, worker, barrier, results))
                 for worker in range(PROCESSES)]
    for process in processes:
        process.start()
    outcomes = {}
    try:
        for _ in processes:
            worker, status, payload = results.get(timeout=START_TIMEOUT_S)
            outcomes[worker] = (status, payload)
    except queue.Empty:
        pass
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()

    errors = {worker: payload for worker, (status, payload) in outcomes.items() if status != "ok"}
    assert not errors, "\n".join(f"worker {worker}:\n{trace}" for worker, trace in errors.items())
    assert len(outcomes) == PROCESSES, f"only workers {sorted(outcomes)} reported back"

    handed_out = {number: uri for _, (_, pairs) in outcomes.items() for number, uri in pairs}
    total = PROCESSES * VERSIONS_EACH
    assert sorted(handed_out) == list(range(1, total + 1))

    with Catalog(database_url) as catalog:
        stored = {v.version: v.artifact_uri for v in catalog.list_versions(publisher="race", name="model")}
        assert stored == handed_out
        model = catalog.get_model(publisher="race", name="model")
        assert (model.latest_version, model.version_count) == (total, total)
        assert model.description.startswith("from worker ")
        assert catalog.get_version(parse("race/model")).version == total
