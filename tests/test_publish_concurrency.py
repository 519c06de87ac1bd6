"""Eight processes publishing versions of one model at once get eight distinct consecutive numbers."""

from __future__ import annotations

import multiprocessing as mp
import os

import pytest

PROCESSES = 8


def _publish(barrier, env, model_dir, out):
    os.environ.update(env)
    import registry

    barrier.wait(timeout=120)
    out.put(registry.publish(model_dir, name="race/model").version)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_publishers_get_consecutive_versions(backend, registry_env, reference_dir, request):
    env = {k: v for k, v in os.environ.items() if k.startswith("MODEL_REGISTRY_")}
    if backend == "postgres":
        env["MODEL_REGISTRY_DATABASE_URL"] = request.getfixturevalue("postgres_url")
        from registry.catalog import schema
        schema.upgrade(env["MODEL_REGISTRY_DATABASE_URL"])
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_publish, args=(barrier, env, str(reference_dir / "tf2_text_embedding"), out))
             for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    versions = sorted(out.get(timeout=5) for _ in range(PROCESSES))
    assert versions == list(range(1, PROCESSES + 1))

    import registry
    reg = registry.Registry(database_url=env["MODEL_REGISTRY_DATABASE_URL"])
    assert [v.version for v in reg.list_versions("race/model")] == versions
    # one artifact: the same bytes were stored once, content-addressed
    assert len({v.artifact_uri for v in reg.list_versions("race/model")}) == 1
