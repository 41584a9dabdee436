"""`python -m bench parse`: reading a wrangler capture — tailwatch's reader vs the floor, same file, same run.

- capture: `--events` (default 40,000) seeded synthetic tail events (`pipeline.synthetic`) printed in wrangler's
  4-space layout to a temp file (about 130 MB with each client's `request.cf`; `--request-cf none` ≈ 77 MB, close
  to the 70 MB capture in shared/research/peer-throughput.md). `--from FILE` measures an existing capture instead.
- floor: read the file, split it on top-level objects (the `\\n}\\n` boundary), `orjson.loads` each object and each
  embedded JSON log string that starts with `{` — the least any reader of this format must do.
- tailwatch: `LogParser` fed the file in 1 MiB chunks, every record taken (framing + extraction).

Best of `--repeat` passes each, interleaved. Prints seconds, events/s and MB/s of both, a check that tailwatch
rejected nothing and made one record per request event, the load average, and a last line `ratio=<floor s /
tailwatch s>` (target ≥ 0.8: tailwatch takes at most 1.25 × the floor's time); exits 1 when missed or when the
check fails. `--profile N` adds a cProfile of one more tailwatch pass (top N functions by own time) before the
ratio line.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import os
import pstats
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Literal, cast

import orjson

from bench._targets import load_text, verdict
from pipeline.parsing import LogParser, ParseStats
from pipeline.synthetic import DEMO_START_MS, Layout, TrafficMix, generate_events, is_request_event, render_capture

MIB = 1 << 20
MB = 1e6
REQUESTS_PER_MINUTE = 600
TARGET = 0.8  # the floor's time over tailwatch's


@dataclass(frozen=True, slots=True)
class Capture:
    path: Path
    events: int
    requests: int | None  # None when not generated here
    size_bytes: int
    generated_s: float | None


@dataclass(frozen=True, slots=True)
class Pass:
    seconds: float  # wall time
    cpu_seconds: float  # this process's CPU time: steadier than wall time on a busy machine
    events: int
    detail: str
    stats: ParseStats | None = None
    records: int = 0


def write_capture(path: Path, events: int, seed: int, layout: Layout,
                  request_cf: Literal["per_client", "basic", "none"]) -> Capture:
    """`events` synthetic tail events (the first to arrive of enough minutes of traffic), printed to `path`."""
    started = time.perf_counter()
    minutes = math.ceil(events / REQUESTS_PER_MINUTE * 1.1) + 2
    stream = generate_events(seed, DEMO_START_MS, minutes, REQUESTS_PER_MINUTE, disorder_ms=2_000,
                             mix=TrafficMix(request_cf=request_cf))
    requests = written = 0
    with path.open("wb") as out:
        batch: list[dict[str, Any]] = []
        for event in islice(stream, events):
            requests += is_request_event(event)
            batch.append(event)
            if len(batch) == 2_000:
                out.write(b"".join(render_capture(batch, layout)))
                written += len(batch)
                batch = []
        out.write(b"".join(render_capture(batch, layout)))
        written += len(batch)
    if written < events:
        raise RuntimeError(f"generated only {written} events, wanted {events}")
    return Capture(path, written, requests, path.stat().st_size, time.perf_counter() - started)


def floor_pass(path: Path) -> Pass:
    """Split on `\\n}\\n`, orjson each object and each embedded JSON log string."""
    started, cpu_started = time.perf_counter(), time.process_time()
    with path.open("rb") as source:
        data = source.read()
    view = memoryview(data)
    loads = orjson.loads
    events = strings = 0
    start = 0
    find = data.find
    while True:
        end = find(b"\n}\n", start)
        if end < 0:
            break
        obj = loads(view[start:end + 2])
        events += 1
        for log in obj.get("logs") or ():
            for arg in log.get("message") or ():
                if type(arg) is str and arg.startswith("{"):
                    loads(arg)
                    strings += 1
        start = end + 3
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return Pass(seconds, cpu_seconds, events, f"{events:,} objects and {strings:,} log strings decoded")


def tailwatch_pass(path: Path, chunk_bytes: int = MIB) -> Pass:
    """`LogParser` over the file in `chunk_bytes` chunks, every record taken."""
    started, cpu_started = time.perf_counter(), time.process_time()
    parser = LogParser(str(path))
    records = 0
    with path.open("rb") as source:
        while chunk := source.read(chunk_bytes):
            records += len(parser.feed(chunk).records)
    records += len(parser.finish().records)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    stats = parser.stats
    return Pass(seconds, cpu_seconds, stats.events, f"{records:,} records, {stats.rejected} rejected", stats,
                records)


def best_of(repeat: int, runs: dict[str, Callable[[], Pass]]) -> dict[str, Pass]:
    """Each run `repeat` times, interleaved; the fastest pass of each."""
    best: dict[str, Pass] = {}
    for _ in range(repeat):
        for name, run in runs.items():
            gc.collect()
            result = run()
            if name not in best or result.seconds < best[name].seconds:
                best[name] = result
    return best


def profile_text(path: Path, chunk_bytes: int, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    tailwatch_pass(path, chunk_bytes)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def describe(name: str, result: Pass, size_bytes: int) -> str:
    return (f"{name}: {result.seconds:.3f} s (cpu {result.cpu_seconds:.3f} s), "
            f"{result.events / result.seconds:,.0f} events/s, {size_bytes / MB / result.seconds:,.1f} MB/s "
            f"({result.detail})")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench parse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=40_000, help="events in the generated capture")
    parser.add_argument("--repeat", type=int, default=3, help="passes of each path; the best counts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--layout", choices=["pretty4", "pretty2"], default="pretty4",
                        help="the floor splits on `\\n}\\n`, so only the pretty layouts")
    parser.add_argument("--request-cf", choices=["per_client", "basic", "none"], default="per_client",
                        help="detail of event.request.cf in the generated events (event size)")
    parser.add_argument("--chunk-bytes", type=int, default=MIB, help="tailwatch's read size")
    parser.add_argument("--from", dest="source", type=Path, help="measure this capture instead of generating one")
    parser.add_argument("--keep", action="store_true", help="keep the generated capture and print its path")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also print a cProfile of one tailwatch pass, top N functions by own time")
    args = parser.parse_args(argv)

    if args.source is not None:
        capture = Capture(args.source, 0, None, args.source.stat().st_size, None)
        return run(capture, args)
    handle, name = tempfile.mkstemp(prefix="tailwatch-bench-", suffix=".json")
    os.close(handle)
    path = Path(name)
    try:
        capture = write_capture(path, args.events, args.seed, cast(Layout, args.layout), args.request_cf)
        print(f"capture: {capture.events:,} events ({capture.requests:,} requests), "
              f"{capture.size_bytes / MB:,.1f} MB ({capture.size_bytes // capture.events:,} bytes/event), "
              f"{args.layout}, request.cf {args.request_cf}, seed {args.seed}; generated in "
              f"{capture.generated_s:.1f} s" + (f" -> {path}" if args.keep else ""))
        return run(capture, args)
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)


def run(capture: Capture, args: argparse.Namespace) -> int:
    path, size = capture.path, capture.size_bytes
    best = best_of(args.repeat, {"floor": lambda: floor_pass(path),
                                 "tailwatch": lambda: tailwatch_pass(path, args.chunk_bytes)})
    floor, tailwatch = best["floor"], best["tailwatch"]
    print(describe(f"floor (split on \\n}}\\n + orjson, best of {args.repeat})", floor, size))
    print(describe(f"tailwatch (LogParser, {args.chunk_bytes // 1024} KiB chunks, best of {args.repeat})",
                   tailwatch, size))
    status = 0
    if tailwatch.stats is not None:
        expected = capture.requests
        problems = []
        if tailwatch.stats.rejected:
            problems.append(f"{tailwatch.stats.rejected} rejected")
        if expected is not None and tailwatch.records != expected:
            problems.append(f"{tailwatch.records} records for {expected} request events")
        if capture.requests is not None and floor.events != capture.events:
            problems.append(f"the floor split {floor.events} objects of {capture.events}")
        print("check: " + ("; ".join(problems) if problems else "ok") + " | " + tailwatch.stats.summary_line())
        status = 1 if problems else 0
    if args.profile:
        print(profile_text(path, args.chunk_bytes, args.profile).rstrip())
    print(load_text())
    return verdict(floor.seconds / tailwatch.seconds, TARGET, also_met=status == 0)
