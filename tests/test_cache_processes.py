"""Many processes, one cache: kill -9 at random points, and crowds resolving one URL at once.

Real processes against a real HTTP server on 127.0.0.1, seeded so a failure can
be replayed. Every directory a process is handed is read back file by file and
compared with the model that was published: a wrong or incomplete directory is
a failure, whatever else happened.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from registry.handles import parse
from registry.resolver import Resolver
from registry.storage.cache import ModelCache
from registry.storage.remote import open_stream
from tests.test_fetch_faults import (FaultyServer, archive, expected_tree, leftover_bytes,  # noqa: F401 (fixture)
                                     result_of, start_resolver)

MB = 1 << 20
SEED = 12


def trusted_entries_are_whole(cache: ModelCache, files: dict[str, str]) -> None:
    """Every entry the cache would hand out (directly or through a ref) holds exactly the published files."""
    for entry in cache.entries():
        assert expected_tree(entry.path) == files, f"a trusted entry {entry.path} is not the model"
    assert cache.verify() == {}


def test_kill_9_at_20_random_points_of_a_download(archive, tmp_path):
    data, sha, files = archive
    rng = random.Random(SEED)
    cache_dir = tmp_path / "cache"
    cache = ModelCache(cache_dir)
    outcomes = {"killed while fetching": 0, "finished before the kill": 0}
    with FaultyServer(data) as server:
        for round_ in range(20):
            server.rate = 8 * MB  # ~0.4 s a download: the kill lands anywhere in it
            how = "url" if round_ % 2 else "sha"
            process = start_resolver(how, cache_dir, server.url, sha, len(data))
            time.sleep(rng.uniform(0.0, 0.6))
            process.send_signal(signal.SIGKILL)
            process.wait()
            finished = cache.get(sha) is not None
            outcomes["finished before the kill" if finished else "killed while fetching"] += 1
            trusted_entries_are_whole(cache, files)

            # Recovery: the next fetch succeeds, and leaves no byte of the killed one's work behind.
            # A hit writes nothing (so a read-only cache serves), hence it sweeps nothing either: a
            # process killed after installing but before releasing its work directory leaves that to
            # the next miss. Make the recovery a miss so it is the sweep that is checked.
            server.rate = None
            if finished:
                cache.remove(sha)
            if how == "url":
                path = Resolver(catalog=None, store=None, cache=cache).resolve(parse(server.url)).path
            else:
                path = cache.fetch(lambda: open_stream(server.url), source=server.url, sha256=sha, size=len(data))[1]
            assert expected_tree(path) == files, f"round {round_}: recovery gave a wrong directory"
            assert leftover_bytes(cache) == 0 and cache.incomplete() == [], f"round {round_}: leftovers"
            cache.remove(sha)  # the next round downloads again
    assert outcomes["killed while fetching"] >= 10, outcomes  # the kills really hit downloads


@pytest.mark.parametrize("round_", range(4))
def test_crowds_resolving_one_url_with_server_delays_all_get_the_whole_model(archive, tmp_path, round_):
    """8 processes at once (the issue's 16 x 8, scaled to a 2-core machine: 4 rounds of 8), half by URL
    handle and half by known sha256 as a catalog handle resolves, while the server pauses at random."""
    data, sha, files = archive
    cache_dir = tmp_path / "cache"
    with FaultyServer(data, seed=SEED + round_) as server:
        server.pauses = True
        go = tmp_path / "go"
        processes = [start_resolver("url" if i % 2 else "sha", cache_dir, server.url, sha, len(data),
                                    started=False, GO_FILE=str(go)) for i in range(8)]
        for process in processes:
            assert process.stdout.readline().strip() == "start"
        go.touch()  # all at once
        results = [result_of(p) for p in processes]
        downloads = server.requests
    for result in results:
        assert "error" not in result, result
        assert result["files"] == files, "a process got a wrong or incomplete directory"
    assert len({r["path"] for r in results}) == 1
    assert downloads <= 2  # one per lock: the URL's and the content hash's
    cache = ModelCache(cache_dir)
    trusted_entries_are_whole(cache, files)
    assert cache.incomplete() == [] and leftover_bytes(cache) == 0
