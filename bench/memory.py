"""`python -m bench memory`: RSS of the pane core holding 10k endpoints × 1 hour of panes.

Runs in a child process per measurement, so each RSS is its own:
- floor: the same endpoint-minutes held as bare tuples of exact counts (no digests, no structure);
- tailwatch: `PaneStore` fed the records minute by minute, closing panes as event time passes; at the end it
  holds 60 closed panes (with t-digests) per endpoint.
Prints both (peak RSS of each child), the load average and a last line `ratio=<tailwatch RSS / 500 MB>`
(target ≤ 1.0: 10,000 endpoints × 1 hour of panes in less than 500 MB); exits 1 when missed.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import time

from bench._targets import load_text, verdict

BASE_MS = 1_767_700_800_000
TARGET_MB = 500.0  # 10,000 endpoints × 1 hour of panes


def _record(t_ms: int, endpoint: str, status: int, duration: float) -> dict[str, object]:
    return {"service": "gateway", "endpoint": endpoint, "status": status, "outcome": "ok", "event_time_ms": t_ms,
            "duration_ms": duration, "cpu_ms": 3, "d1": []}


def hold(kind: str, endpoints: int, minutes: int, per_pane: int) -> None:
    from pipeline.pane_store import PaneStore

    rng = random.Random(1)
    store = PaneStore(retention_ms=minutes * 60_000)
    floor: dict[tuple[str, int], tuple[int, int, int]] = {}
    started = time.perf_counter()
    for minute in range(minutes):
        start = BASE_MS + minute * 60_000
        records = [_record(start + rng.randrange(60_000), f"/api/e{e}", 500 if rng.random() < 0.02 else 200,
                           rng.lognormvariate(3.5, 0.8))
                   for e in range(endpoints) for _ in range(per_pane)]
        if kind == "floor":
            for r in records:
                key = (str(r["endpoint"]), minute)
                total, ok, bad = floor.get(key, (0, 0, 0))
                floor[key] = (total + 1, ok + (r["status"] == 200), bad + (r["status"] != 200))
        else:
            store.add(records)
            store.close_until(start)
    store.close_until(BASE_MS + minutes * 60_000)
    held = store.panes_held() if kind == "tailwatch" else len(floor)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{kind} {held} {rss_mb:.1f} {time.perf_counter() - started:.1f}")


def measure(kind: str, args: argparse.Namespace) -> tuple[int, float, float]:
    out = subprocess.run([sys.executable, "-m", "bench", "memory", "--child", kind, "--endpoints", str(args.endpoints),
                          "--minutes", str(args.minutes), "--per-pane", str(args.per_pane)],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[1]), float(out[2]), float(out[3])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench memory")
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--per-pane", type=int, default=2, help="records per endpoint-minute")
    parser.add_argument("--child", choices=["floor", "tailwatch"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        hold(args.child, args.endpoints, args.minutes, args.per_pane)
        return 0
    held, floor_mb, floor_s = measure("floor", args)
    print(f"floor (exact counts as tuples): {held} endpoint-minutes, {floor_mb:.0f} MB RSS ({floor_s:.0f} s)")
    held, tw_mb, tw_s = measure("tailwatch", args)
    print(f"tailwatch PaneStore: {held} panes held, {tw_mb:.0f} MB RSS ({tw_s:.0f} s); "
          f"{tw_mb / floor_mb:.1f}x the floor")
    print(load_text())
    return verdict(tw_mb / TARGET_MB, 1.0, at_most=True)
