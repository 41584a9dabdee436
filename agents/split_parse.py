"""Reading one large capture file on two CPUs: the records of its first half parsed here, of its second half in a
forked child, at the same time. The result is the serial reader's: the file is cut where a pretty object starts
right after another one's closing line (`pipeline.framing.object_start_after`), where the framer's state is the
same in both readings, and the second half is parsed with the offset and line of the cut. Records come out in
file order — the first half's as parsed dicts, the second half's as the columns the panes read
(`pipeline.log_columns`, made in the child: the parent decodes no record of its own for them); the counts are
merged. The endpoint catalog (`pipeline.endpoint_catalog`) decides the second half's keys here in the parent, after
the first half's, so its decisions are the serial reader's; the replay stamps both alike.

Used for plain files of `MIN_SPLIT_BYTES` (or $TAILWATCH_SPLIT_MIN_BYTES) up to `MAX_SPLIT_BYTES` when there are
two CPUs or more. Both halves are read in chunks (never the whole file); the second half's records wait in memory
until the first half is done, hence the upper bound. Anything else (stdin, gzip, a small or huge file, no cut
point) is read serially.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from agents.child_process import death_signal_preexec
from agents.sources import CHUNK_BYTES, chunks_of, damage_of
from pipeline.extract import Extractor
from pipeline.framing import object_start_after
from pipeline.log_columns import LogColumns, from_records
from pipeline.parsing import LogParser, ParseStats

MIN_SPLIT_BYTES = 16 << 20
MAX_SPLIT_BYTES = 256 << 20  # the second half's records are held until the first half is done: larger files are
# read serially
MIN_SPLIT_ENV = "TAILWATCH_SPLIT_MIN_BYTES"  # overrides MIN_SPLIT_BYTES (tests split small files with 0)
_GZIP_MAGIC = b"\x1f\x8b"
_BATCH_RECORDS = 2_000

CUT_WINDOW_BYTES = 1 << 20
SPLIT_AT = 0.5  # where the file is cut, as a fraction of its size (the first cut point after it)


def _parse_from(path: str, source: str, extractor: Extractor, cut: int) -> tuple[list[LogColumns], ParseStats]:
    """In the child: the records of the file from `cut` on, as columns (what the panes read, in batches; the parent
    decides their endpoints and stamps them), and their counts. The file is read in chunks: first to count the lines
    before the cut, then to parse."""
    with open(path, "rb") as handle:
        lines, left = 1, cut
        while left > 0 and (chunk := handle.read(min(CHUNK_BYTES, left))):
            lines += chunk.count(b"\n")
            left -= len(chunk)
        parser = LogParser(source, extractor, start_offset=cut, start_line=lines, assign_endpoints=False)
        records: list[dict[str, Any]] = []
        while chunk := handle.read(CHUNK_BYTES):
            records.extend(parser.feed(chunk).records)
    records.extend(parser.finish().records)
    return [from_records(records[start:start + _BATCH_RECORDS])
            for start in range(0, len(records), _BATCH_RECORDS)], parser.stats


def _cut_point(path: str, near: int) -> int:
    """The first split point (`object_start_after`) at or after byte `near`, read in windows; -1 when none."""
    with open(path, "rb") as handle:
        position = max(near - 1, 0)  # where object_start_after starts looking
        while True:
            handle.seek(position)
            window = handle.read(CUT_WINDOW_BYTES)
            if len(window) < 5:
                return -1
            hit = object_start_after(window, 0)
            if hit >= 0:
                return position + hit
            position += len(window) - 4  # the pattern may straddle two windows


def _splittable(path: str, min_bytes: int) -> bool:
    if path == "-" or (os.cpu_count() or 1) < 2:
        return False
    try:
        if not min_bytes <= os.path.getsize(path) <= MAX_SPLIT_BYTES:
            return False
        with open(path, "rb") as probe:
            return probe.read(2) != _GZIP_MAGIC
    except OSError:
        return False


Batches = Iterator[list[dict[str, Any]] | LogColumns]


def record_batches(path: str, source: str, extractor: Extractor, totals: ParseStats,
                   min_split_bytes: int | None = None, on_bytes: Callable[[int], None] | None = None,
                   near: float = SPLIT_AT) -> Batches:
    """The records of one capture in file order, in batches; its counts are merged into `totals` at the end.
    `on_bytes(n)`: n more input bytes were read (for a progress bar). A split capture's child starts parsing at
    this call, before the first batch is asked for (the caller can import what it needs meanwhile)."""
    read = on_bytes or (lambda _n: None)
    if min_split_bytes is None:
        min_split_bytes = int(os.environ.get(MIN_SPLIT_ENV, MIN_SPLIT_BYTES))
    if not _splittable(path, min_split_bytes):
        return _serial_batches(path, source, extractor, totals, read)
    return _split_batches(path, source, extractor, totals, near, on_bytes=read)


def _serial_batches(path: str, source: str, extractor: Extractor, totals: ParseStats,
                    read: Callable[[int], None]) -> Batches:
    parser = LogParser(source, extractor)
    chunks = chunks_of(path)
    for chunk in chunks:
        read(len(chunk))
        yield parser.feed(chunk).records
    if (damage := damage_of(chunks)) is not None:  # the records before the damage stand
        parser.input_damaged(damage.offset, damage.reason)
    yield parser.finish().records
    totals.merge(parser.stats)


def _split_batches(path: str, source: str, extractor: Extractor, totals: ParseStats, near: float = SPLIT_AT,
                   on_bytes: Callable[[int], None] | None = None) -> Batches:
    """The child is started here; the returned iterator reads the first half, then takes the child's."""
    size = os.path.getsize(path)
    cut = _cut_point(path, int(size * near))
    tail = None
    if cut >= 0:
        # SIGKILL when this process dies (its result would have no reader); nothing of it needs flushing.
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"),
                                   initializer=death_signal_preexec(signal.SIGKILL))
        try:
            tail = pool.submit(_parse_from, path, source, extractor, cut)
        finally:
            pool.shutdown(wait=False)
    return _read_split(path, source, extractor, totals, size, cut, tail, on_bytes or (lambda _n: None))


def _read_split(path: str, source: str, extractor: Extractor, totals: ParseStats, size: int, cut: int,
                tail: Future[tuple[list[LogColumns], ParseStats]] | None, read: Callable[[int], None]) -> Batches:
    parser = LogParser(source, extractor)
    with open(path, "rb") as handle:
        left = cut if cut >= 0 else None
        while left is None or left > 0:
            chunk = handle.read(CHUNK_BYTES if left is None else min(CHUNK_BYTES, left))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            read(len(chunk))
            yield parser.feed(chunk).records
    yield parser.finish(first_part=tail is not None).records
    if tail is None:
        totals.merge(parser.stats)
        return
    batches, stats = tail.result()
    parser.check_events(parser.stats.events + stats.events)  # the whole file's: the first half may have none
    totals.merge(parser.stats)
    read(size - cut)
    for batch in batches:
        yield extractor.catalog.assign_columns(batch)  # here, after the first half's records: in file order
    totals.merge(stats)
