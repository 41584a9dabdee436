"""Pane store table tests: boundaries, lateness, closing order, eviction, windows, daily D1 rows."""

from __future__ import annotations

import random

import numpy as np
import orjson
import pytest

from pipeline.metrics import snapshot
from pipeline.pane_store import PaneStore
from pipeline.replay import Replay
from pipeline.windows import PANE_MS
from tests.test_pipeline.records import BASE_MS, d1, record

T0 = BASE_MS


def test_records_count_into_half_open_panes_and_close_at_the_watermark() -> None:
    store = PaneStore()
    store.add([record(T0), record(T0 + 59_999), record(T0 + 60_000)])
    assert store.close_until(T0 + 59_999) == []  # the first pane ends at T0+60000: not yet
    first = store.close_until(T0 + 60_000)
    assert [(e.start_ms, e.end_ms, e.pane.total) for e in first] == [(T0, T0 + 60_000, 2)]
    second = store.close_until(T0 + 120_000)
    assert [(e.start_ms, e.pane.total) for e in second] == [(T0 + 60_000, 1)]
    assert store.close_until(T0 + 120_000) == []  # a watermark that did not move closes nothing


@pytest.mark.parametrize(
    ("watermark_ms", "late"),
    [
        (T0 + 59_999, False),  # its pane ends after the watermark: still counted
        (T0 + 60_000, True),  # its pane ended exactly at the watermark: late
        (T0 + 90_000, True),
        (None, False),  # no stamp (parse output): only the store's own progress decides
    ],
)
def test_lateness_is_decided_by_the_record_watermark(watermark_ms: int | None, late: bool) -> None:
    store = PaneStore()
    rec = record(T0 + 30_000)
    if watermark_ms is not None:
        rec["watermark_ms"] = watermark_ms
    assert store.add([rec]) == int(late)
    closed = store.close_until(T0 + 10 * PANE_MS)
    counted = {e.start_ms: (e.pane.total, e.pane.late_dropped) for e in closed}
    if late:
        assert watermark_ms is not None
        # counted as late_dropped in the pane holding its watermark, not in its own pane
        holder = watermark_ms - watermark_ms % PANE_MS
        assert counted == {holder: (0, 1)}
    else:
        assert counted == {T0: (1, 0)}


def test_records_for_closed_panes_are_late_even_without_a_stamp() -> None:
    store = PaneStore()
    store.add([record(T0)])
    store.close_until(T0 + 2 * PANE_MS)
    assert store.add([record(T0 + 1000), record(T0 + 2 * PANE_MS)]) == 1
    closed = store.close_until(T0 + 3 * PANE_MS)
    assert [(e.start_ms, e.pane.total, e.pane.late_dropped) for e in closed] == [(T0 + 2 * PANE_MS, 1, 1)]


def test_closed_panes_come_out_oldest_first_then_by_endpoint() -> None:
    store = PaneStore()
    store.add([record(T0 + PANE_MS, "/b"), record(T0, "/b"), record(T0, "/a"), record(T0 + PANE_MS, "/a")])
    closed = store.close_until(T0 + 2 * PANE_MS)
    assert [(e.start_ms - T0, e.endpoint) for e in closed] == [(0, "/a"), (0, "/b"), (PANE_MS, "/a"),
                                                               (PANE_MS, "/b")]


def test_exact_counts_status_classes_and_d1() -> None:
    store = PaneStore()
    recs = [
        record(T0, status=200), record(T0, status=201), record(T0, status=304), record(T0, status=404),
        record(T0, status=404), record(T0, status=500), record(T0, status=None, outcome="canceled"),
        record(T0, status=None, outcome="exceededCpu"),
        record(T0, d1=[d1("read", 4.0, rows_read=10), d1("write", 9.0, rows_read=0, rows_written=2),
                       d1("read", 150.0, error_code="connection_failed")]),
    ]
    store.add(recs)
    (event,) = store.close_until(T0 + PANE_MS)
    snap = snapshot(event)
    assert snap["total"] == 9
    assert snap["responses"] == 8  # the canceled request has no response
    assert snap["status_class"] == {"2xx": 3, "3xx": 1, "4xx": 2, "5xx": 2, "none": 1}
    assert snap["status"] == {"200": 2, "201": 1, "304": 1, "404": 2, "500": 1}
    assert snap["success_rate"] == pytest.approx(4 / 8)
    assert snap["error_rate"] == pytest.approx(4 / 8)
    assert snap["ratio_404"] == pytest.approx(2 / 8)
    assert (snap["d1_queries"], snap["d1_reads"], snap["d1_writes"]) == (3, 2, 1)
    assert snap["d1_read_write_ratio"] == pytest.approx(2 / 3)
    assert snap["d1_connection_failures"] == 1
    assert (snap["d1_rows_read"], snap["d1_rows_written"], snap["d1_rows_read_today"]) == (11, 2, 11)
    assert snap["window_start"] == "2026-01-06T12:00:00.000Z"
    assert snap["window_end"] == "2026-01-06T12:01:00.000Z"


def test_p95_is_within_one_percent_of_numpy_on_10k_values() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(mean=np.log(80), sigma=1.0, size=12_000)
    store = PaneStore()
    store.add([record(T0 + i % PANE_MS, duration=float(v)) for i, v in enumerate(values)])
    (event,) = store.close_until(T0 + PANE_MS)
    snap = snapshot(event)
    for q, key in ((50, "p50_ms"), (95, "p95_ms"), (99, "p99_ms")):
        exact = float(np.percentile(values, q))
        assert abs(snap[key] - exact) / exact < 0.01, (key, snap[key], exact)
    assert snap["avg_ms"] == pytest.approx(float(values.mean()), rel=1e-6)


def test_same_records_in_any_order_and_batching_give_identical_snapshots() -> None:
    rng = random.Random(3)
    recs = [record(T0 + rng.randrange(3 * PANE_MS), rng.choice(["/a", "/b"]), rng.choice([200, 404, 500]),
                   rng.lognormvariate(3, 1)) for _ in range(3000)]

    def run(order: list[dict], batch: int) -> list[dict]:
        store = PaneStore()
        out = []
        for i in range(0, len(order), batch):
            store.add([dict(r) for r in order[i:i + batch]])
        out = [snapshot(e) for e in store.close_until(T0 + 3 * PANE_MS)]
        return out

    shuffled = recs[:]
    rng.shuffle(shuffled)
    assert run(recs, 7) == run(shuffled, 500) == run(recs, 3000)


def test_windows_merge_panes_without_records_and_eviction_bounds_history() -> None:
    store = PaneStore(retention_ms=5 * PANE_MS)
    for minute in range(10):
        store.add([record(T0 + minute * PANE_MS, status=500 if minute % 2 else 200)] * (minute + 1))
    store.close_until(T0 + 10 * PANE_MS)
    window = store.window("svc", "/api/a", T0 + 10 * PANE_MS, 5 * PANE_MS)
    assert window.total == 6 + 7 + 8 + 9 + 10
    assert window.classes == {"5xx": 6 + 8 + 10, "2xx": 7 + 9}
    # The rules have not read the windows of the panes this close returned yet: the oldest one's stays whole.
    assert store.window("svc", "/api/a", T0 + PANE_MS, 5 * PANE_MS).total == 1
    assert store.panes_held() == 10
    # The next close evicts minutes 0-4, older than the retention: a longer window only sees what is held.
    store.close_until(T0 + 10 * PANE_MS + 1)
    assert store.window("svc", "/api/a", T0 + 10 * PANE_MS, 10 * PANE_MS).total == window.total
    assert store.panes_held() == 5
    assert store.window("svc", "/nope", T0 + 10 * PANE_MS, 5 * PANE_MS).total == 0


def test_a_watermark_jump_keeps_the_windows_of_the_panes_it_closes() -> None:
    """The end of input (or any jump of the watermark) closes panes whose windows reach back a retention: eviction
    must not cut them before the rules read them, or live and replay (which jump differently) disagree."""
    store = PaneStore(retention_ms=5 * PANE_MS)
    for minute in range(8):
        store.add([record(T0 + minute * PANE_MS)] * (minute + 1))
    store.close_until(T0 + 6 * PANE_MS)  # minutes 0-5 closed
    closed = store.close_all()  # minutes 6 and 7
    assert [(e.start_ms - T0) // PANE_MS for e in closed] == [6, 7]
    assert store.window("svc", "/api/a", T0 + 7 * PANE_MS, 5 * PANE_MS).total == 3 + 4 + 5 + 6 + 7
    assert store.window("svc", "/api/a", T0 + 8 * PANE_MS, 5 * PANE_MS).total == 4 + 5 + 6 + 7 + 8


def test_d1_rows_read_today_restarts_at_midnight_utc() -> None:
    day = 86_400_000
    midnight = T0 - T0 % day + day
    store = PaneStore()
    store.add([record(midnight - PANE_MS, d1=[d1(rows_read=5)]), record(midnight, d1=[d1(rows_read=7)]),
               record(midnight + PANE_MS, d1=[d1(rows_read=1)])])
    events = store.close_until(midnight + 2 * PANE_MS)
    assert [e.d1_rows_read_today for e in events] == [5, 7, 8]


def test_replay_matches_a_store_fed_with_the_same_stamped_records() -> None:
    rng = random.Random(11)
    recs = [record(T0 + i * 150 + rng.randrange(-20_000, 20_000)) for i in range(2000)]
    replay = Replay(lateness_ms=10_000)
    events = []
    for i in range(0, len(recs), 100):
        events += replay.feed("s", [dict(r) for r in recs[i:i + 100]])
    events += replay.end("s")
    assert sum(e.pane.total for e in events) + sum(e.pane.late_dropped for e in events) == len(recs)
    assert replay.late == sum(e.pane.late_dropped for e in events) > 0  # the disorder made some late
    one_shot = Replay(lateness_ms=10_000)
    again = one_shot.feed("s", [dict(r) for r in recs]) + one_shot.end("s")
    assert [snapshot(e) for e in events] == [snapshot(e) for e in again]


def test_checkpoint_restore_resumes_identically() -> None:
    """Restore an operator from its snapshot plus the closed-pane keys (some written after it), re-apply the later
    batches: same snapshots, and no pane twice in the history."""
    from pipeline.pane_codec import closed_from_dict, closed_to_dict
    from pipeline.partition_operator import PartitionOperator
    from pipeline.watermarks import SourceWatermark

    rng = random.Random(9)
    recs = [record(T0 + i * 400 + rng.randrange(-15_000, 15_000), rng.choice(["/a", "/b"])) for i in range(1500)]
    batches = [recs[i:i + 100] for i in range(0, len(recs), 100)]

    def apply(operator: PartitionOperator, offset: int, batch: list[dict], closed_keys: dict) -> list[dict]:
        step = operator.feed("p", batch[-1]["watermark_ms"], [dict(r) for r in batch], offset=offset)
        for e in step.closed:  # stored as the worker stores them: serialized
            closed_keys[(e.service, e.endpoint, e.start_ms)] = orjson.dumps(closed_to_dict(e.pane))
        return [snapshot(e) for e in step.closed]

    SourceWatermark(10_000).stamp(recs)
    first, keys = PartitionOperator(), {}
    undisturbed = []
    saved = None
    for offset, batch in enumerate(batches):
        undisturbed += apply(first, offset, batch, keys)
        if offset == 6:
            saved = orjson.loads(orjson.dumps(first.snapshot()))
    assert saved is not None
    second = PartitionOperator()
    closed = [(s, e, start, closed_from_dict(orjson.loads(d))) for (s, e, start), d in keys.items()]
    second.restore(saved, closed)
    assert second.applied_offset == 6
    resumed = [snap for snap in undisturbed if snap["window_end_ms"] <= saved["closed_until_ms"]]
    for offset, batch in enumerate(batches[7:], start=7):
        resumed += apply(second, offset, batch, {})
    def order(snap: dict) -> tuple[int, str]:
        return snap["window_start_ms"], snap["endpoint"]

    assert sorted(resumed, key=order) == sorted(undisturbed, key=order)
    for group, panes in second.store.history.items():
        assert len({pane.start_ms for pane in panes}) == len(panes), f"{group} holds a pane twice"


def test_checkpoint_keeps_when_each_producer_was_last_heard() -> None:
    """The idle-producer clock travels in the checkpoint, so a restarted worker leaves out the same producers."""
    from pipeline.partition_operator import PartitionOperator

    operator = PartitionOperator(idle_producer_ms=1_000)
    operator.feed("crashed", 100, [], offset=2, published_ms=10_000)
    operator.feed("live", 900, [], offset=3, published_ms=12_000)
    assert operator.watermark.value == 900
    saved = orjson.loads(orjson.dumps(operator.snapshot()))
    again = PartitionOperator(idle_producer_ms=1_000)
    again.restore(saved, [])
    assert again.applied_offset == 3
    assert again.watermark.value == 900 and again.watermark.idle() == {"crashed"}


def test_closing_at_end_of_input_keeps_the_history_the_closed_panes_windows_read() -> None:
    """The end of input closes everything at once: the panes just closed still see their windows (live = replay)."""

    store = PaneStore(retention_ms=60 * PANE_MS)
    for minute in range(8):
        store.add([record(T0 + minute * PANE_MS)] * 3)
    events = store.close_all()
    assert len(events) == 8
    assert [store.window("svc", "/api/a", e.end_ms, 5 * PANE_MS).total for e in events] == [3, 6, 9, 12, 15, 15, 15, 15]
