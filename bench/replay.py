"""`python -m bench replay`: `tailwatch replay --metrics` vs jq on the same capture, same run.

- capture: `--events` (default 40,000) seeded synthetic tail events in wrangler's 4-space layout (as `bench parse`).
- jq (the reference): the spec's "Log analysis" recipe after extracting the FactoryLogs first —
  `jq -c '.logs[]?.message[]? | select(type=="string" and startswith("{")) | fromjson' capture |
   jq -s 'group_by(.endpoint) | map({endpoint: .[0].endpoint, avg_ms: (map(.duration_ms) | add / length)})'`
- tailwatch: `tailwatch replay --metrics --no-digests capture` (a fresh process: start-up included), which
  computes every pane's counts, rates and percentiles, not one average. tailwatch's modules are byte-compiled first,
  as an installed package's are (with PYTHONDONTWRITEBYTECODE set, every run would compile them again).
Best of `--repeat`. Prints both times, the load average and a last line `ratio=<tailwatch s / jq s>` (target
≤ 0.25); exits 1 when missed.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._targets import load_text, verdict
from bench.parse import write_capture

JQ_EXTRACT = '.logs[]?.message[]? | select(type=="string" and startswith("{")) | fromjson'
TARGET = 0.25  # tailwatch's time over jq's
JQ_AVERAGE = "group_by(.endpoint) | map({endpoint: .[0].endpoint, avg_ms: (map(.duration_ms) | add / length)})"


def time_jq(path: Path) -> float:
    started = time.perf_counter()
    with path.open("rb") as capture:
        extract = subprocess.Popen(["jq", "-c", JQ_EXTRACT], stdin=capture, stdout=subprocess.PIPE)
        average = subprocess.run(["jq", "-s", JQ_AVERAGE], stdin=extract.stdout, capture_output=True, check=True)
        assert extract.stdout is not None
        extract.stdout.close()
        if extract.wait() != 0:
            raise RuntimeError("jq failed")
    assert average.stdout.startswith(b"[")
    return time.perf_counter() - started


def compile_tailwatch() -> None:
    """Byte-compile tailwatch's packages (their `__pycache__`), as installing a package does."""
    root = Path(__file__).resolve().parents[1]
    for package in ("agents", "pipeline", "schemas"):
        compileall.compile_dir(root / package, quiet=1)


def time_replay(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "agents.cli", "replay", "--metrics", "--no-digests", str(path)],
                            capture_output=True, check=True)
    return time.perf_counter() - started, result.stdout.count(b"\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench replay")
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if shutil.which("jq") is None:
        print("jq is not installed (apt-get install jq)", file=sys.stderr)
        return 2
    handle, name = tempfile.mkstemp(prefix="tailwatch-bench-", suffix=".json")
    os.close(handle)
    path = Path(name)
    try:
        compile_tailwatch()
        capture = write_capture(path, args.events, args.seed, "pretty4", "per_client")
        print(f"capture: {capture.events:,} events, {capture.size_bytes / 1e6:,.1f} MB, 4-space layout")
        jq_s = min(time_jq(path) for _ in range(args.repeat))
        runs = [time_replay(path) for _ in range(args.repeat)]
        replay_s = min(seconds for seconds, _ in runs)
        print(f"jq (extract FactoryLogs, then average by endpoint): {jq_s:.2f} s")
        print(f"tailwatch replay --metrics: {replay_s:.2f} s, {runs[0][1]} pane snapshots "
              f"({capture.events / replay_s:,.0f} events/s)")
        print(load_text())
        return verdict(replay_s / jq_s, TARGET, at_most=True)
    finally:
        path.unlink(missing_ok=True)
