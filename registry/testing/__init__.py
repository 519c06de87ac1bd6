"""Contract suites an implementation of one of the registry's seams runs in its own tests.

- ``registry.testing.adapter_contract``: a ``FormatAdapter`` (built-in or third-party),
  driven by the matrix cells it declares;
- ``registry.testing.storage_contract``: an artifact store backend.

They are plain classes whose ``check_*`` methods raise ``ContractFailure`` (an
``AssertionError``), so they run under any test runner: pytest is not a
dependency of ``registry``. A pytest module parametrizes over ``CHECKS``::

    @pytest.mark.parametrize("check", AdapterContract.CHECKS)
    def test_contract(check, tmp_path):
        AdapterContract(MyAdapter, MySample(), tmp_path).run(check)
"""

from __future__ import annotations


class ContractFailure(AssertionError):
    """An implementation does not do what its contract (or its own declaration) says."""


def require(condition: object, message: str) -> None:
    """Raise ``ContractFailure(message)`` unless ``condition``; unlike ``assert``, never compiled away."""
    if not condition:
        raise ContractFailure(message)
