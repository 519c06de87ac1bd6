"""Test helpers for the one-registry-one-path tests."""

from __future__ import annotations


def record_gate_calls(reg, monkeypatch) -> list:
    """Wrap ``reg.check`` (the matrix gate) so every call is recorded as (format, operation, mode)."""
    calls = []
    check = reg.check

    def counting_check(format, operation, mode):
        calls.append((format, operation, mode))
        return check(format, operation, mode)

    monkeypatch.setattr(reg, "check", counting_check)
    return calls
