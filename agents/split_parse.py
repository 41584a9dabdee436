"""Reading one large capture file on two CPUs: the records of its first half parsed here, of its second half in a
forked child, at the same time. The result is the serial reader's: the file is cut where a pretty object starts
right after another one's closing line (`pipeline.framing.object_start_after`), where the framer's state is the
same in both readings, and the second half is parsed with the offset and line of the cut. Records come out in
file order; the counts are merged.

Used for plain files of `MIN_SPLIT_BYTES` (or $TAILWATCH_SPLIT_MIN_BYTES) up to `MAX_SPLIT_BYTES` (the file is
read into memory) when there are two CPUs or more; anything else (stdin, gzip, a small or huge file, no cut point)
is read serially.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import orjson

from agents.sources import CHUNK_BYTES, chunks_of, open_capture
from pipeline.extract import Extractor
from pipeline.framing import object_start_after
from pipeline.parsing import LogParser, ParseStats

MIN_SPLIT_BYTES = 16 << 20
MAX_SPLIT_BYTES = 1 << 30  # the file is held in memory while it is parsed: larger ones are streamed serially
MIN_SPLIT_ENV = "TAILWATCH_SPLIT_MIN_BYTES"  # overrides MIN_SPLIT_BYTES (tests split small files with 0)
_GZIP_MAGIC = b"\x1f\x8b"
_BATCH_RECORDS = 2_000

_shared: tuple[bytes, str, Extractor] | None = None  # what the forked child reads: set just before the fork


def _parse_from(cut: int) -> tuple[bytes, ParseStats]:
    """In the child: the records of data[cut:] (as one orjson array) and their counts."""
    assert _shared is not None
    data, source, extractor = _shared
    parser = LogParser(source, extractor, start_offset=cut, start_line=data.count(b"\n", 0, cut) + 1)
    view = memoryview(data)
    records: list[dict[str, Any]] = []
    for start in range(cut, len(data), CHUNK_BYTES):
        records.extend(parser.feed(bytes(view[start:start + CHUNK_BYTES])).records)
    records.extend(parser.finish().records)
    return orjson.dumps(records), parser.stats


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


def record_batches(path: str, source: str, extractor: Extractor, totals: ParseStats,
                   min_split_bytes: int | None = None) -> Iterator[list[dict[str, Any]]]:
    """The records of one capture in file order, in batches; its counts are merged into `totals` at the end."""
    if min_split_bytes is None:
        min_split_bytes = int(os.environ.get(MIN_SPLIT_ENV, MIN_SPLIT_BYTES))
    if not _splittable(path, min_split_bytes):
        parser = LogParser(source, extractor)
        for chunk in chunks_of(path):
            yield parser.feed(chunk).records
        yield parser.finish().records
        totals.merge(parser.stats)
        return
    with open_capture(path) as handle:
        data = handle.read()
    yield from _split_batches(data, source, extractor, totals)


def _split_batches(data: bytes, source: str, extractor: Extractor, totals: ParseStats,
                   near: float = 0.5) -> Iterator[list[dict[str, Any]]]:
    global _shared  # noqa: PLW0603 - handed to the forked child without pickling 100+ MB
    cut = object_start_after(data, int(len(data) * near))
    parser = LogParser(source, extractor)
    view = memoryview(data)
    if cut < 0:
        cut = len(data)
        tail = None
    else:
        _shared = (data, source, extractor)
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
        try:
            tail = pool.submit(_parse_from, cut)
        finally:
            _shared = None
            pool.shutdown(wait=False)
    for start in range(0, cut, CHUNK_BYTES):
        yield parser.feed(bytes(view[start:min(start + CHUNK_BYTES, cut)])).records
    yield parser.finish().records
    totals.merge(parser.stats)
    if tail is not None:
        encoded, stats = tail.result()
        records = orjson.loads(encoded)
        del encoded
        for start in range(0, len(records), _BATCH_RECORDS):
            yield records[start:start + _BATCH_RECORDS]
        totals.merge(stats)
