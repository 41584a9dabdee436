"""The worker's periodic `malloc_trim`: memory freed in the middle of glibc's heap goes back to the system."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.malloc_trim import release_free_memory


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_memory_freed_after_a_peak_is_returned_to_the_system() -> None:
    if not Path("/proc/self/status").exists() or not release_free_memory():
        pytest.skip("needs Linux with glibc (malloc_trim)")
    # A peak as a worker has one: 100 MB of snapshot-sized buffers (15 kB, past pymalloc: glibc's heap), of which
    # every 20th stays alive, so the heap's top is never free and glibc alone keeps the rest.
    buffers = [bytes(15_000) + i.to_bytes(4, "big") for i in range(7_000)]
    kept = buffers[::20]
    peak = rss_mb()
    del buffers
    held = rss_mb()
    assert held > peak - 30, f"glibc kept less than expected ({peak:.0f} -> {held:.0f} MB): the test proves nothing"
    assert release_free_memory()
    after = rss_mb()
    assert after < held - 60, f"RSS {held:.0f} MB before the trim, {after:.0f} MB after"
    assert len(kept) == 350
