"""Closed panes as `PaneStore` holds them for windows: compact, and merged back into exact `ClosedPane`s.

A store holds endpoints × retention closed panes (10,000 endpoints × 60 minutes: 600,000), so their size is the
worker's memory. A `ClosedPane` with its three count dicts, digests and history tuple took ~1.2 KB; a `HeldPane`
keeps the same content in one slotted object:
- `counts`: one tuple of the exact counts — total, duration count, the six D1 counts, late_dropped (`add_held`
  reads them in that order), then the status-class, status and outcome dicts as tuples of their (key, count)
  items, in the dicts' order; equal tuples are shared;
- `duration_sum_ms`, and the three digests; once a pane is no longer among the newest its store reads most
  (`compact_digests`), in their held form (`pipeline.sketches.held_form`: a small pane's values instead of its
  digest, checked to rebuild the digest's bytes exactly), which costs ~0.5 µs a digest to rebuild in a window.
`merge_held` adds them up in the order given, as `ClosedPane.merge` does, so a window is the same object — same
counts, same dict order, digests byte for byte — as the one merged from the closed panes.

`Sharing` is what lets equal parts (count tuples of quiet endpoints, small digests of integer CPU times, pane
starts) be one object: a table of at most `SHARED_MAX` entries, emptied when full (held panes keep what they
share; sharing only changes which object holds a value, never the value).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, TypeVar

from pipeline.panes import ClosedPane
from pipeline.sketches import HeldSketch, held_form, merge_held_digests

SHARED_MAX = 16_384  # entries of a `Sharing` table

T = TypeVar("T", bound=Hashable)


class Sharing:
    """Equal values as one object: `shared(value)` gives the first equal value seen (since the table was last
    emptied). Bound: `limit` entries."""

    __slots__ = ("limit", "table")

    def __init__(self, limit: int = SHARED_MAX) -> None:
        self.limit = limit
        self.table: dict[Any, Any] = {}

    def shared(self, value: T) -> T:
        found: T | None = self.table.get(value)
        if found is not None:
            return found
        if len(self.table) >= self.limit:
            self.table.clear()
        self.table[value] = value
        return value


class HeldPane:
    """One closed pane of one endpoint, held for windows (see the module's docstring)."""

    __slots__ = ("counts", "cpu_digest", "d1_digest", "duration_digest", "duration_sum_ms", "start_ms")

    def __init__(self, start_ms: int, counts: tuple[Any, ...], duration_sum_ms: float,
                 duration_digest: HeldSketch | None, cpu_digest: HeldSketch | None,
                 d1_digest: HeldSketch | None) -> None:
        self.start_ms = start_ms
        self.counts = counts
        self.duration_sum_ms = duration_sum_ms
        self.duration_digest = duration_digest
        self.cpu_digest = cpu_digest
        self.d1_digest = d1_digest


def hold(start_ms: int, pane: ClosedPane, sharing: Sharing) -> HeldPane:
    """`pane` (which started at `start_ms`) as held: compact, sharing equal parts through `sharing`."""
    shared = sharing.shared
    counts = shared((pane.total, pane.duration_count, pane.d1_queries, pane.d1_reads, pane.d1_writes,
                     pane.d1_connection_failures, pane.d1_rows_read, pane.d1_rows_written, pane.late_dropped,
                     shared(tuple(pane.classes.items())), shared(tuple(pane.status.items())),
                     shared(tuple(pane.outcome.items()))))
    return HeldPane(shared(start_ms), counts, pane.duration_sum_ms, pane.duration_digest, pane.cpu_digest,
                    pane.d1_digest)


def compact_digests(pane: HeldPane, sharing: Sharing) -> None:
    """The pane's digests in their held form (`pipeline.sketches.held_form`), equal ones shared."""
    pane.duration_digest = _held(pane.duration_digest, sharing)
    pane.cpu_digest = _held(pane.cpu_digest, sharing)
    pane.d1_digest = _held(pane.d1_digest, sharing)


def _held(sketch: bytes | None, sharing: Sharing) -> HeldSketch | None:
    held = held_form(sketch)
    return held if held is None or held is sketch else sharing.shared(held)


def merge_held(panes: Iterable[HeldPane]) -> ClosedPane:
    """The panes merged in the order given (oldest first): `ClosedPane.merge` of the panes they hold."""
    listed = list(panes)
    merged = ClosedPane(duration_digest=merge_held_digests([p.duration_digest for p in listed]),
                        cpu_digest=merge_held_digests([p.cpu_digest for p in listed]),
                        d1_digest=merge_held_digests([p.d1_digest for p in listed]))
    for pane in listed:
        add_held(merged, pane)
    return merged


def add_held(merged: ClosedPane, pane: HeldPane) -> None:
    """`merged.add_counts(<the closed pane held>)`: the same additions, in the same order."""
    (total, duration_count, d1_queries, d1_reads, d1_writes, d1_failures, d1_rows_read, d1_rows_written,
     late_dropped, class_items, status_items, outcome_items) = pane.counts
    merged.total += total
    classes = merged.classes
    for key, count in class_items:
        classes[key] = classes.get(key, 0) + count
    outcome = merged.outcome
    for key, count in outcome_items:
        outcome[key] = outcome.get(key, 0) + count
    status = merged.status
    for code, count in status_items:
        status[code] = status.get(code, 0) + count
    merged.duration_sum_ms += pane.duration_sum_ms
    merged.duration_count += duration_count
    merged.d1_queries += d1_queries
    merged.d1_reads += d1_reads
    merged.d1_writes += d1_writes
    merged.d1_connection_failures += d1_failures
    merged.d1_rows_read += d1_rows_read
    merged.d1_rows_written += d1_rows_written
    merged.late_dropped += late_dropped
