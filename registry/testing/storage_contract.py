"""The contract every artifact store backend passes: what the publisher and the resolver rely on.

A store keeps content-addressed archives: ``uri_for(sha256)`` names where one
lives, ``put(local_file, sha256, progress=None)`` uploads it (once: putting the
same bytes again changes nothing) and returns that URI, ``exists(uri)`` says
whether it is there, and ``open(uri)`` is a context manager yielding a binary
stream of it, raising ``ArtifactNotFound`` for one that is not. The suite puts
real bytes and reads them back; nothing is mocked::

    @pytest.mark.parametrize("check", StorageContract.CHECKS)
    def test_my_store(check, tmp_path):
        StorageContract(lambda: MyStore("my://bucket/prefix"), tmp_path).run(check)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable

from registry.errors import ArtifactNotFound
from registry.testing import ContractFailure, require

#: Big enough that a backend streams it in more than one piece.
PAYLOAD_SIZE = (3 << 20) + 12345


class StorageContract:
    """Checks for the store ``make_store()`` returns; ``workdir`` is an empty local folder for the test's files."""

    CHECKS = ("check_round_trip", "check_put_twice_is_a_no_op", "check_missing_is_artifact_not_found",
              "check_artifacts_do_not_collide", "check_progress_counts_every_byte")

    def __init__(self, make_store: Callable[[], Any], workdir: Path):
        self.make_store = make_store
        self.workdir = Path(workdir)

    def run(self, check: str) -> None:
        require(check in self.CHECKS, f"no storage contract check named {check!r}")
        getattr(self, check)()

    # -- helpers ----------------------------------------------------------------------------------

    def _artifact(self, name: str, size: int = PAYLOAD_SIZE) -> tuple[Path, str, bytes]:
        data = hashlib.shake_256(name.encode()).digest(size)
        path = self.workdir / f"{name}.tar.gz"
        path.write_bytes(data)
        return path, hashlib.sha256(data).hexdigest(), data

    @staticmethod
    def _read(store: Any, uri: str) -> bytes:
        with store.open(uri) as stream:
            chunks: list[bytes] = []
            while True:
                chunk = stream.read(1 << 16)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)

    # -- checks -----------------------------------------------------------------------------------

    def check_round_trip(self) -> None:
        """put, then exists and open give back exactly the bytes, at ``uri_for(sha256)``."""
        store = self.make_store()
        path, sha, data = self._artifact("round-trip")
        uri = store.put(path, sha)
        require(isinstance(uri, str) and uri, f"put returned {uri!r}, not a URI")
        require(uri == store.uri_for(sha), f"put stored at {uri}, but uri_for names {store.uri_for(sha)}")
        require(store.exists(uri), f"exists({uri}) is False right after put")
        got = self._read(store, uri)
        require(len(got) == len(data) and got == data,
                f"open({uri}) gave {len(got)} bytes that differ from the {len(data)} put")
        # A new store object over the same location (another process) sees it too.
        require(self._read(self.make_store(), uri) == data, "a second store object reads other bytes")

    def check_put_twice_is_a_no_op(self) -> None:
        store = self.make_store()
        path, sha, data = self._artifact("twice")
        first = store.put(path, sha)
        second = store.put(path, sha)
        require(first == second, f"the same artifact was put at {first} and then {second}")
        require(self._read(store, first) == data, "putting an artifact twice changed its bytes")

    def check_missing_is_artifact_not_found(self) -> None:
        store = self.make_store()
        uri = store.uri_for("0" * 64)
        require(not store.exists(uri), f"exists({uri}) is True for an artifact never put")
        try:
            self._read(store, uri)
        except ArtifactNotFound:
            return
        except Exception as error:  # the contract is a typed error, whatever the backend raises inside
            raise ContractFailure(f"open of a missing artifact raised {type(error).__name__}: {error}, "
                                  "not ArtifactNotFound") from error
        raise ContractFailure(f"open({uri}) of an artifact never put did not fail")

    def check_artifacts_do_not_collide(self) -> None:
        store = self.make_store()
        stored = {}
        for name in ("first", "second"):
            path, sha, data = self._artifact(name, size=1000 + len(name))
            stored[store.put(path, sha)] = data
        require(len(stored) == 2, "two artifacts were stored under one URI")
        for uri, data in stored.items():
            require(self._read(store, uri) == data, f"{uri} holds another artifact's bytes")

    def check_progress_counts_every_byte(self) -> None:
        """What ``put`` reports to ``progress`` adds up to the file (a backend that cannot tell reports nothing)."""
        store = self.make_store()
        path, sha, _ = self._artifact("progress")
        counted: list[int] = []
        store.put(path, sha, progress=counted.append)
        size = os.path.getsize(path)
        require(sum(counted) in (0, size), f"put reported {sum(counted)} bytes of progress for a {size}-byte file")
        require(all(n > 0 for n in counted), f"put reported a step of no bytes or fewer: {counted}")


__all__ = ["ContractFailure", "StorageContract"]
