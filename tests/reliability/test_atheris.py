"""A short, bounded coverage-guided run of tests/reliability/fuzz_reader.py (skipped where atheris is missing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

HARNESS = Path(__file__).with_name("fuzz_reader.py")
ROOT = HARNESS.parents[2]


def test_atheris_reader_run_finds_no_crash() -> None:
    runs = int(os.environ.get("TAILWATCH_ATHERIS_RUNS", "100000"))
    done = subprocess.run([sys.executable, str(HARNESS), f"-atheris_runs={runs}", "-max_len=4096"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Done {runs} in" in done.stderr, done.stderr[-2000:]
