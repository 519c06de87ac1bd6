"""Local and GCS artifact stores pass the shipped storage contract (registry.testing.storage_contract).

The GCS store runs against the emulator the test session starts; both put real
bytes and read them back through the store's own ``open``.
"""

from __future__ import annotations

import pytest

from registry.storage.artifacts import ArtifactStore
from registry.testing import ContractFailure
from registry.testing.storage_contract import StorageContract


@pytest.mark.parametrize("check", StorageContract.CHECKS)
def test_local_store_contract(check, tmp_path):
    (tmp_path / "files").mkdir()
    StorageContract(lambda: ArtifactStore(str(tmp_path / "store")), tmp_path / "files").run(check)


@pytest.mark.parametrize("check", StorageContract.CHECKS)
def test_gcs_store_contract(check, gcs_bucket, tmp_path):
    StorageContract(lambda: ArtifactStore(gcs_bucket), tmp_path).run(check)


class _ForgetfulStore(ArtifactStore):
    """A store that loses what it is given: the suite must notice, or it checks nothing."""

    def put(self, local_file, sha256, *, progress=None):
        return self.uri_for(sha256)


def test_the_storage_contract_fails_a_store_that_keeps_nothing(tmp_path):
    (tmp_path / "files").mkdir()
    contract = StorageContract(lambda: _ForgetfulStore(str(tmp_path / "store")), tmp_path / "files")
    with pytest.raises(ContractFailure, match="is False right after put"):
        contract.run("check_round_trip")
    contract.run("check_missing_is_artifact_not_found")  # what it does do, it does right
