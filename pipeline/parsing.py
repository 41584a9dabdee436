"""The reader: wrangler output bytes in, normalized records, dead letters and counts out.

`LogParser` glues the framer and the extractor, and keeps the counts the CLI and the ingest agent report:
`events` (objects decoded), `records`, `noise`, `rejected`, `non_request`, each with a breakdown by kind.
An input in UTF-16/UTF-32 or with a byte order mark is transcoded first (`pipeline.encoding`). An input that ends
with no event at all, or whose reading stopped at damage (`input_damaged`: a truncated `.gz`), is counted
(`inputs_without_events`, `damaged_inputs`) with a warning that says what was found: the commands exit 2 on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson

from pipeline.encoding import InputDecoder, what_was_found
from pipeline.extract import Extractor
from pipeline.fast_record import record_of_json, request_record
from pipeline.framing import (
    DEFAULT_MAX_OBJECT_BYTES,
    Broken,
    Extracted,
    Frame,
    Noise,
    Piece,
    TailFramer,
    excerpt_of,
)
from pipeline.pieces import Lines, decode_object

SLICE_BYTES = 64 * 1024
SAMPLE_BYTES = 4096  # the start of an input kept to say what it was when it held no event
MAX_WARNINGS = 100  # warnings kept per ParseStats (inputs are counted beyond it)


@dataclass(slots=True)
class ParseStats:
    events: int = 0
    records: int = 0
    noise: int = 0
    rejected: int = 0
    non_request: int = 0
    invalid_fields: int = 0
    repaired_utf8: int = 0
    inputs_without_events: int = 0
    damaged_inputs: int = 0
    noise_by_kind: Counter[str] = field(default_factory=Counter)
    rejected_by_kind: Counter[str] = field(default_factory=Counter)
    non_request_by_kind: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)  # at most MAX_WARNINGS

    @property
    def incomplete(self) -> bool:
        """An input held no wrangler event, or its reading stopped at damage: the commands exit 2."""
        return bool(self.inputs_without_events or self.damaged_inputs)

    def warn(self, text: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)

    def summary_line(self) -> str:
        head = (f"events={self.events} records={self.records} noise={self.noise} rejected={self.rejected} "
                f"non_request={self.non_request}")
        extra = [f"invalid_fields={self.invalid_fields}", f"repaired_utf8={self.repaired_utf8}"]
        extra.extend(f"{name}={getattr(self, name)}" for name in ("inputs_without_events", "damaged_inputs")
                     if getattr(self, name))
        for name, counter in (("noise", self.noise_by_kind), ("rejected", self.rejected_by_kind),
                              ("non_request", self.non_request_by_kind)):
            extra.extend(f"{name}.{kind}={count}" for kind, count in sorted(counter.items()))
        return head + " " + " ".join(extra)

    def merge(self, other: ParseStats) -> None:
        for name in ("events", "records", "noise", "rejected", "non_request", "invalid_fields", "repaired_utf8",
                     "inputs_without_events", "damaged_inputs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for text in other.warnings:
            self.warn(text)
        self.noise_by_kind.update(other.noise_by_kind)
        self.rejected_by_kind.update(other.rejected_by_kind)
        self.non_request_by_kind.update(other.non_request_by_kind)


@dataclass(slots=True)
class ParseOutput:
    records: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # wrangler's own words on stdout (e.g. giving up)


def dead_letter(source: str, line: int | None, offset: int | None, kind: str, reason: str,
                excerpt: str) -> dict[str, Any]:
    """A dict shaped like `schemas.deadletter.DeadLetter`."""
    return {"v": 1, "source": source, "line": line, "offset": offset, "kind": kind, "reason": reason,
            "excerpt": excerpt}


class LogParser:
    """Incremental: `feed(chunk)` then `finish()`. One parser per input source."""

    def __init__(self, source: str, extractor: Extractor | None = None,
                 max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES, start_offset: int = 0, start_line: int = 1,
                 assign_endpoints: bool = True) -> None:
        """`start_offset`, `start_line`: where this input starts in a larger one (see `framing.object_start_after`).
        `assign_endpoints`: apply the extractor's endpoint catalog to the records (off only where the caller applies
        it itself, in input order: `agents/split_parse.py`'s second half)."""
        self.source = source
        self.stats = ParseStats()
        self._extractor = extractor or Extractor()
        self._catalog = self._extractor.catalog if assign_endpoints else None
        self._framer = TailFramer(max_object_bytes, start_offset, start_line,
                                  partial(record_of_json, self._extractor.routes))
        # Only the start of an input can tell its encoding (a part of a split capture is plain UTF-8 already).
        self._framer_started_at_zero = start_offset == 0  # a part of a split capture says nothing about the whole
        self._decoder: InputDecoder | None = InputDecoder() if start_offset == 0 else None
        self._encoding: str | None = None
        self._sample = b""
        self._size = 0
        self._damaged = False
        self._no_lines = Lines(b"", 1, 0)  # pushed objects have no lines: every one is on line 1

    def feed(self, chunk: bytes) -> ParseOutput:
        """Framed and extracted in slices of `SLICE_BYTES`: a few decoded events alive at a time keeps the garbage
        collector quiet and the data in cache (the framer's output does not depend on how input is sliced)."""
        self._size += len(chunk)
        if self._decoder is not None:
            chunk = self._transcode(chunk, final=False)
        if len(self._sample) < SAMPLE_BYTES:
            self._sample += chunk[:SAMPLE_BYTES - len(self._sample)]
        out = ParseOutput()
        if len(chunk) <= SLICE_BYTES:
            self._handle(self._framer.feed(chunk), out)
            return out
        view = memoryview(chunk)
        for start in range(0, len(chunk), SLICE_BYTES):
            self._handle(self._framer.feed(view[start:start + SLICE_BYTES]), out)
        return out

    def feed_objects(self, objects: Iterable[Any]) -> ParseOutput:
        """Decoded events (Logpush lines mapped to TraceItems), each taken as a frame of wrangler's output would be:
        the same records, counts and dead letters. A dead letter's `offset` is the item's index."""
        return self._feed_items((obj, False, "", "", None) for obj in objects)

    def feed_raw_objects(self, raws: Iterable[Any]) -> ParseOutput:
        """The JSON texts of events (a Tail Worker's array, split by `push_bodies`), decoded one at a time as the
        framer decodes (invalid UTF-8 or a lone surrogate escape repaired and counted); one that does not decode
        costs only itself (`malformed_json`). `raws`: bytes-like (`msgspec.Raw`). Each text takes the fast path from
        its bytes first (`record_of_json`), as a capture's pretty objects do."""
        routes = self._extractor.routes
        return self._feed_items(_decoded(raw, record_of_json(routes, raw)) for raw in raws)

    def _feed_items(self, items: Iterable[tuple[Any, bool, str, str, dict[str, Any] | None]]) -> ParseOutput:
        out = ParseOutput()
        pieces: list[Piece] = []
        append = pieces.append
        lines = self._no_lines
        routes = self._extractor.routes
        records: list[dict[str, Any]] | None = None  # the current run of fast-path records, as the framer makes
        for index, (obj, repaired, error, excerpt, made) in enumerate(items):
            if made is not None or type(obj) is dict:
                record = made or (None if repaired else request_record(routes, obj))
                if record is None:
                    append(Frame(obj, index, lines, repaired))
                    records = None
                elif records is None:
                    records = [record]
                    append(Extracted(records))
                else:
                    records.append(record)
            elif error:  # decode_object's reason: not JSON, or JSON that is not an object
                records = None
                if error.startswith("top-level value"):
                    append(Broken("not_an_event", f"item {index}: {error}", excerpt, 1, index))
                else:
                    append(Broken("malformed_json", f"item {index}: {error}", excerpt, 1, index))
            else:
                records = None
                append(Broken("not_an_event", f"item {index} is a JSON {type(obj).__name__}, not an object",
                              excerpt_of(_short_repr(obj)), 1, index))
        self._handle(pieces, out)
        return out

    def _transcode(self, chunk: bytes, final: bool) -> bytes:
        decoder = self._decoder
        assert decoder is not None
        chunk = decoder.feed(chunk, final)
        self._encoding = decoder.description
        if decoder.settled:
            self._decoder = None  # plain UTF-8 (after any BOM): passed through from now on
        return chunk

    def input_damaged(self, offset: int, reason: str) -> ParseOutput:
        """Reading the input stopped at damage (`offset`: where, in the input as stored, e.g. a `.gz` file): counted,
        dead-lettered and warned about; the records read before it stand. Call before `finish`."""
        self._damaged = True
        self.stats.damaged_inputs += 1
        self.stats.warn(f"{self.source}: input damaged at byte {offset}: {reason}; "
                        f"the {self.stats.records} records before it were kept, the rest of the input is lost")
        out = ParseOutput()
        out.dead_letters.append(dead_letter(self.source, None, offset, "damaged_input", reason, ""))
        return out

    def finish(self, first_part: bool = False) -> ParseOutput:
        """The end of the input. `first_part`: the input goes on in another parser (the first half of a split
        capture), so whether it held any event is decided later, with `check_events`."""
        out = ParseOutput()
        if self._decoder is not None:
            rest = self._transcode(b"", final=True)
            if len(self._sample) < SAMPLE_BYTES:
                self._sample += rest[:SAMPLE_BYTES - len(self._sample)]
            self._handle(self._framer.feed(rest), out)
        self._handle(self._framer.finish(), out)
        if not first_part and self._framer_started_at_zero:
            self.check_events(self.stats.events)
        return out

    def check_events(self, events: int) -> None:
        """Count and explain an input that held no event (`events`: of the whole input, all its parts)."""
        stats = self.stats
        if events == 0 and not self._damaged:
            stats.inputs_without_events += 1
            found = what_was_found(self._sample, self._size, self._encoding, stats.noise, stats.rejected,
                                   list(stats.rejected_by_kind))
            stats.warn(f"{self.source}: no wrangler tail events; found {found}")

    def _handle(self, pieces: list[Piece], out: ParseOutput) -> None:
        """Each frame takes the fast path to its record (`request_record`) when it can, else the general one."""
        records = out.records
        append = records.append
        routes = self._extractor.routes
        before = len(records)
        frames = 0
        for piece in pieces:
            if type(piece) is Extracted:  # the fast path's records, made in the framer
                frames += len(piece.records)
                records.extend(piece.records)
            elif type(piece) is Frame:
                frames += 1
                if piece.repaired_utf8:
                    self.stats.repaired_utf8 += 1
                record = request_record(routes, piece.obj)
                if record is not None:
                    append(record)
                else:
                    self._extract(piece, out)
            else:
                self._other(piece, out)
        self.stats.events += frames
        self.stats.records += len(records) - before
        if self._catalog is not None:
            self._catalog.assign(records, before)

    def _extract(self, frame: Frame, out: ParseOutput) -> None:
        """The general path: a record (counted by `_handle`), a non-request event or a rejection; field problems
        dead-lettered."""
        stats = self.stats
        result = self._extractor.extract(frame.obj)
        if result.repaired_utf8 and not frame.repaired_utf8:  # counted once per event
            stats.repaired_utf8 += 1
        if result.problems:
            stats.invalid_fields += len(result.problems)
            out.dead_letters.append(dead_letter(
                self.source, frame.line, frame.offset, "invalid_field", "; ".join(result.problems)[:1000],
                excerpt_of(_short_repr(frame.obj))))
        if result.record is not None:
            out.records.append(result.record)
        elif result.non_request is not None:
            stats.non_request += 1
            stats.non_request_by_kind[result.non_request] += 1
        else:
            kind = result.reject_kind or "not_an_event"
            stats.rejected += 1
            stats.rejected_by_kind[kind] += 1
            out.dead_letters.append(dead_letter(self.source, frame.line, frame.offset, kind,
                                                result.reject_reason or kind, excerpt_of(_short_repr(frame.obj))))

    def _other(self, piece: Piece, out: ParseOutput) -> None:
        stats = self.stats
        if type(piece) is Noise:
            stats.noise += 1
            stats.noise_by_kind[piece.kind] += 1
            if piece.kind == "json_string":
                out.notices.append(piece.text)
        elif type(piece) is Broken:
            stats.rejected += 1
            stats.rejected_by_kind[piece.kind] += 1
            out.dead_letters.append(dead_letter(self.source, piece.line, piece.offset, piece.kind,
                                                piece.reason, piece.excerpt))


def _short_repr(obj: Any) -> str:
    return orjson.dumps(obj)[:512].decode("utf-8", errors="replace")


def _decoded(raw: Any, record: dict[str, Any] | None) -> tuple[Any, bool, str, str, dict[str, Any] | None]:
    """(value, repaired, error, excerpt, record) of one event's JSON text: its record when the fast path made one
    (nothing else is decoded), else orjson's value, with the framer's repairs on failure."""
    if record is not None:
        return None, False, "", "", record
    try:
        return orjson.loads(memoryview(raw)), False, "", "", None
    except orjson.JSONDecodeError:
        text = bytes(memoryview(raw))
        obj, repaired, error = decode_object(text)
        if obj is not None:
            return obj, repaired, "", "", None
        return None, False, error, excerpt_of(text), None


def parse_chunks(source: str, chunks: Iterable[bytes], extractor: Extractor | None = None) -> Iterator[ParseOutput]:
    """Parse a whole input given as chunks; yields one output per chunk, then the final one."""
    parser = LogParser(source, extractor)
    for chunk in chunks:
        yield parser.feed(chunk)
    yield parser.finish()
