"""Reliability suite: bounded for CI; TAILWATCH_FUZZ_CASES scales the fuzz runs (see README, "Reliability")."""

from __future__ import annotations

import os

import pytest

FUZZ_CASES = int(os.environ.get("TAILWATCH_FUZZ_CASES", "2000"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)
