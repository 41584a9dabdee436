"""Held panes: the compact form `PaneStore` keeps closed panes in merges back into exactly the closed panes' windows,
small digests are kept as their values, shared parts stay bounded, and a held pane costs a fraction of a closed one."""

from __future__ import annotations

import random
import tracemalloc
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.held_panes import Sharing, compact_digests, hold, merge_held
from pipeline.pane_store import RECENT_PANES, PaneStore
from pipeline.panes import ClosedPane, OpenPane
from pipeline.sketches import HELD_VALUES_MAX, VALUES_TAG, digest_of, expanded, held_form, merge_digests
from tests.test_pipeline.records import BASE_MS, d1, record

values = st.lists(st.one_of(st.integers(0, 50).map(float), st.floats(0, 5_000, allow_nan=False),
                            st.sampled_from([0.0, 1.5, 3.0])), max_size=24)
keyed_counts = st.dictionaries(st.sampled_from(["2xx", "4xx", "5xx", "none", "other"]), st.integers(1, 10**6))


@st.composite
def closed_panes(draw: st.DrawFn) -> ClosedPane:
    pane = OpenPane(durations=draw(values), cpu=draw(values), d1_durations=draw(values))
    pane.total = draw(st.integers(0, 10**9))
    pane.classes = draw(keyed_counts)
    pane.status = draw(st.dictionaries(st.integers(100, 599), st.integers(1, 10**6)))
    pane.outcome = draw(st.dictionaries(st.sampled_from(["ok", "exception", "canceled"]), st.integers(1, 300)))
    pane.duration_sum_ms = draw(st.floats(0, 1e9, allow_nan=False))
    pane.duration_count, pane.d1_queries, pane.d1_reads, pane.d1_writes, pane.d1_connection_failures, \
        pane.d1_rows_read, pane.d1_rows_written, pane.late_dropped = draw(st.lists(st.integers(0, 2**40), min_size=8,
                                                                                  max_size=8))
    return pane.close()


def as_items(pane: ClosedPane) -> tuple[Any, ...]:
    """Everything a merged pane holds, dict orders included."""
    return (pane.total, list(pane.classes.items()), list(pane.status.items()), list(pane.outcome.items()),
            pane.duration_sum_ms, pane.duration_count, pane.d1_queries, pane.d1_reads, pane.d1_writes,
            pane.d1_connection_failures, pane.d1_rows_read, pane.d1_rows_written, pane.late_dropped,
            pane.duration_digest, pane.cpu_digest, pane.d1_digest)


@settings(max_examples=150, deadline=None)
@given(st.lists(closed_panes(), max_size=8), st.lists(st.booleans(), min_size=8, max_size=8),
       st.integers(1, 64))
def test_held_panes_merge_into_exactly_the_closed_panes_window(panes: list[ClosedPane], compacted: list[bool],
                                                                limit: int) -> None:
    sharing = Sharing(limit)
    held = [hold(start, pane, sharing) for start, pane in enumerate(panes)]
    for pane, compact in zip(held, compacted, strict=False):
        if compact:
            compact_digests(pane, sharing)
    for first in range(len(panes) + 1):
        for last in range(first, len(panes) + 1):
            assert as_items(merge_held(held[first:last])) == as_items(ClosedPane.merge(panes[first:last]))
    assert len(sharing.table) <= limit


@settings(max_examples=300, deadline=None)
@given(values)
def test_a_small_digest_is_held_as_its_values_and_rebuilt_byte_for_byte(drawn: list[float]) -> None:
    digest = digest_of(drawn)
    held = held_form(digest)
    assert expanded(held) == digest
    if 0 < len(drawn) <= HELD_VALUES_MAX:
        assert held is not None and digest is not None
        assert held.startswith(VALUES_TAG) and len(held) == 1 + 8 * len(drawn) < len(digest)
    else:
        assert held is digest


def test_only_digests_their_values_rebuild_are_held_as_values() -> None:
    merged = merge_digests([digest_of([1.0, 2.0]), digest_of([1.0, 2.0, 3.0])])  # 5 centroids of weight 1
    assert expanded(held_form(merged)) == merged
    compressed = merge_digests([digest_of([float(v) for v in range(200)])] * 2)  # weights > 1
    assert compressed is not None and held_form(compressed) is compressed
    large = digest_of([float(v) for v in range(HELD_VALUES_MAX + 1)])
    assert held_form(large) is large
    damaged = digest_of([1.0, 2.0])
    assert damaged is not None
    damaged = damaged[:-8] + bytes(8)  # a weight that is not 1: kept as it is, never "compacted" wrongly
    assert held_form(damaged) is damaged


def test_sharing_gives_one_object_per_value_and_stays_within_its_limit() -> None:
    sharing = Sharing(limit=3)
    first = sharing.shared((1, ("2xx", 2)))
    assert sharing.shared((1, ("2xx", 2))) is first
    for value in range(10):
        assert sharing.shared((value, "x")) == (value, "x")
        assert len(sharing.table) <= 3


def feed(store: PaneStore, minutes: int, endpoints: int, seed: int = 1) -> list[Any]:
    rng = random.Random(seed)
    events = []
    for minute in range(minutes):
        start = BASE_MS + minute * 60_000
        store.add([record(start + rng.randrange(60_000), f"/e{e}", rng.choice([200, 200, 404, 503, None]),
                          rng.choice([None, rng.lognormvariate(3, 1), float(rng.randrange(50))]),
                          cpu_ms=rng.randrange(1, 6), d1=[d1(duration=rng.choice([1.0, 2.5]))] * rng.randrange(2))
                   for e in range(endpoints) for _ in range(rng.randrange(0, 25))])
        events += store.close_until(start)
    events += store.close_all()
    return events


def test_the_store_windows_equal_the_closed_panes_merged_and_only_the_newest_keep_their_digests() -> None:
    store = PaneStore(retention_ms=30 * 60_000)
    events = feed(store, 30, 6)
    end = max(e.end_ms for e in events)
    for endpoint in {e.endpoint for e in events}:
        mine = [e for e in events if e.endpoint == endpoint]
        for window_ms in (60_000, 5 * 60_000, 17 * 60_000, 30 * 60_000):
            expected = ClosedPane.merge(e.pane for e in mine if end - window_ms <= e.start_ms < end)
            assert as_items(store.window("svc", endpoint, end, window_ms)) == as_items(expected)
        held = list(store.history[("svc", endpoint)])
        assert all(p.duration_digest is None or not p.duration_digest.startswith(VALUES_TAG)
                   for p in held[-RECENT_PANES:])
        assert any(p.duration_digest is not None and p.duration_digest.startswith(VALUES_TAG)
                   for p in held[:-RECENT_PANES])


def test_a_held_pane_costs_a_fraction_of_a_closed_one() -> None:
    """The bound behind `python -m bench memory` (10,000 endpoints × 60 panes < 500 MB): quiet endpoints' panes
    (2 records a minute, as in the bench) take < 350 bytes each held (~250 measured), where a `ClosedPane` took
    ~1,150."""
    rng = random.Random(2)
    store = PaneStore()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for minute in range(60):
            start = BASE_MS + minute * 60_000
            store.add([record(start + rng.randrange(60_000), f"/e{e}", duration=rng.lognormvariate(3.5, 0.8),
                              cpu_ms=3) for e in range(200) for _ in range(2)])
            store.close_until(start)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert store.panes_held() == 200 * 60
    assert held / store.panes_held() < 350


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.floats(0, 1e6, allow_nan=False), st.sampled_from([0.0, 1.0, 12.5])),
                       min_size=1, max_size=700), seed=st.integers(0, 2**32))
def test_a_digest_does_not_depend_on_the_order_of_its_values(values: list[float], seed: int) -> None:
    """A pane's values arrive in batch order; its digest is the digest of the sorted values (fastdigest sorts,
    stably). Only a pane holding both 0.0 and -0.0 keeps their arrival order (equal values), as Python's sort did;
    that order is the same live and replayed."""
    shuffled = list(values)
    random.Random(seed).shuffle(shuffled)
    assert digest_of(shuffled) == digest_of(sorted(values))
