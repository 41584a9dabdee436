"""Runs the atheris harness for a bounded number of inputs, when atheris is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("fuzz_reader_atheris.py")
ROOT = Path(__file__).parents[2]


def test_atheris_reader_harness_finds_no_crash(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris not installed (pip install -e '.[fuzz]')")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "sample").write_bytes(b"\x01" + (ROOT / "tests" / "fixtures" / "wrangler-tail-sample.json").read_bytes())
    runs = os.environ.get("TAILWATCH_ATHERIS_RUNS", "20000")
    done = subprocess.run([sys.executable, str(HARNESS), f"-runs={runs}", "-max_total_time=25", "-max_len=8192",
                           str(corpus)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done" in done.stderr, done.stderr[-3000:]
