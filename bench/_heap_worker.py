"""`python -m bench._heap_worker <tailwatch args>`: `tailwatch` with a heap probe, for `bench soak --heap-dir`.

It runs `agents.cli.main` with tracemalloc on and a thread that, for each file `request-<n>` appearing in
`$TAILWATCH_SOAK_HEAP_DIR`, writes `heap-<n>.snap` (a tracemalloc snapshot after a full collection) and
`heap-<n>.json`: the process's RSS, the bytes Python has allocated (traced), and glibc malloc's view (`mallinfo2`:
bytes in use and bytes free but held in its arenas), then the RSS after `malloc_trim(0)` (what giving the held free
memory back to the system would save). This separates growth of Python objects from allocator growth. Bench only:
tracemalloc slows the worker down and costs memory of its own.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS]


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def probe(out: Path, n: int) -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    gc.collect()
    tracing = tracemalloc.is_tracing()
    snapshot = tracemalloc.take_snapshot() if tracing else None
    traced, peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    info = libc.mallinfo2()
    figures = {"rss": rss_bytes(), "traced": traced, "traced_peak": peak,
               "tracemalloc_overhead": tracemalloc.get_tracemalloc_memory(),
               "malloc_in_use": info.uordblks, "malloc_free_held": info.fordblks, "malloc_mmapped": info.hblkhd,
               "malloc_arena_bytes": info.arena}
    figures["holders"] = holders_of("FutureMessage")
    libc.malloc_trim(0)
    figures["rss_after_trim"] = rss_bytes()
    if snapshot is not None:
        snapshot.dump(str(out / f"heap-{n}.snap"))
    (out / f"heap-{n}.json.tmp").write_text(json.dumps(figures))
    (out / f"heap-{n}.json.tmp").rename(out / f"heap-{n}.json")


def holders_of(type_name: str, chain: int = 4) -> dict[str, int]:
    """How many live objects of `type_name` there are, by the chain of what refers to them (a sample of 50)."""
    found = [obj for obj in gc.get_objects() if type(obj).__name__ == type_name]
    counts: dict[str, int] = {"total": len(found)}
    sample = found[:: max(1, len(found) // 50)]
    mine = {id(found), id(sample)}
    for obj in sample:
        names, current = [], obj
        for _ in range(chain):
            referrers = [r for r in gc.get_referrers(current) if id(r) not in mine and type(r).__name__ != "frame"]
            mine.add(id(referrers))
            if not referrers:
                break
            current = referrers[0]
            names.append(describe(current))
        key = " <- ".join(names)
        counts[key] = counts.get(key, 0) + 1
    return counts


def describe(obj: object) -> str:
    label = type(obj).__name__
    if type(obj).__name__ == "cell":
        owners = [f for f in gc.get_referrers(obj) if isinstance(f, tuple)]
        funcs = [g for t in owners for g in gc.get_referrers(t) if hasattr(g, "__closure__")]
        return f"cell({funcs[0].__module__}.{funcs[0].__qualname__})" if funcs else label
    if hasattr(obj, "__qualname__"):
        return f"{label}({getattr(obj, '__module__', '?')}.{obj.__qualname__})"
    if isinstance(obj, dict):
        owner = [r for r in gc.get_referrers(obj) if getattr(r, "__dict__", None) is obj]
        return f"dict({type(owner[0]).__name__})" if owner else f"dict[{len(obj)}]"
    if isinstance(obj, (list, tuple, set)):
        return f"{label}[{len(obj)}]"
    return label


def serve(out: Path) -> None:
    n = 0
    while True:
        n += 1
        request = out / f"request-{n}"
        while not request.exists():
            time.sleep(0.2)
        probe(out, n)


def main() -> int:
    out = Path(os.environ["TAILWATCH_SOAK_HEAP_DIR"])
    frames = int(os.environ.get("TAILWATCH_SOAK_HEAP_FRAMES", "1"))  # 0: malloc statistics only, at full speed
    if frames:
        tracemalloc.start(frames)
    threading.Thread(target=serve, args=(out,), daemon=True).start()
    from agents.cli import main as tailwatch

    return tailwatch(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())


def request_probe(heap_dir: Path, n: int, timeout_s: float = 300.0) -> dict[str, int]:
    """Ask the worker of `heap_dir` for its `n`-th probe (1, 2, … per worker process) and return its figures."""
    (heap_dir / f"request-{n}").touch()
    result = heap_dir / f"heap-{n}.json"
    deadline = time.monotonic() + timeout_s
    while not result.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no heap probe {result} in {timeout_s} s")
        time.sleep(0.2)
    figures: dict[str, int] = json.loads(result.read_text())
    return figures


def probe_line(figures: dict[str, int]) -> str:
    mb = {name: value / 2**20 for name, value in figures.items() if isinstance(value, int)}
    return (f"    heap: rss {mb['rss']:.1f} MB = python traced {mb['traced']:.1f} (peak since the last probe "
            f"{mb['traced_peak']:.1f}) + tracemalloc "
            f"{mb['tracemalloc_overhead']:.1f}; malloc in use {mb['malloc_in_use']:.1f}, free held "
            f"{mb['malloc_free_held']:.1f}, mmapped {mb['malloc_mmapped']:.1f}; rss after malloc_trim "
            f"{mb['rss_after_trim']:.1f} MB; held {figures.get('holders')}")


def growth_lines(heap_dir: Path, first: int, last: int, top: int = 12) -> list[str]:
    """The lines of code whose allocations held grew most from probe `first` to probe `last`."""
    if not (heap_dir / f"heap-{last}.snap").exists():
        return []
    old = tracemalloc.Snapshot.load(str(heap_dir / f"heap-{first}.snap"))
    new = tracemalloc.Snapshot.load(str(heap_dir / f"heap-{last}.snap"))
    diff = new.compare_to(old, "lineno")
    return [f"    {stat.size_diff / 2**20:+8.2f} MB {stat.count_diff:+8d} blocks  {stat.traceback}"
            for stat in diff[:top]]
