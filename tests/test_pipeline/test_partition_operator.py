"""The per-partition operator: producers that come and go, restarts, and a checkpoint that stays flat."""

from __future__ import annotations

import random
from typing import Any

import orjson

from agents.partition_driver import skip_deleted
from agents.rules_files import load_rules
from pipeline.batching import BatchBuilder
from pipeline.held_panes import merge_held
from pipeline.log_batches import decode_pane_batch
from pipeline.metrics import snapshot
from pipeline.pane_codec import closed_from_dict, closed_to_dict
from pipeline.partition_operator import LEGACY_END_OF_INPUT_MS, PartitionOperator
from pipeline.rules.engine import RuleEngine
from pipeline.windows import PANE_MS
from tests.test_pipeline.records import BASE_MS, record

MINUTES = 40
CUT_MINUTE = 20


def traffic(seed: int = 3) -> list[dict[str, Any]]:
    """40 minutes on three endpoints, arriving up to 8 s out of order; /api/b fails from minute 12 to 30 and
    /api/c slows down from minute 24 to 36, so rules fire before and after the cut and across it."""
    rng = random.Random(seed)
    out = []
    for i in range(MINUTES * 60 * 4):
        t = BASE_MS + i * 250
        minute = (t - BASE_MS) // PANE_MS
        endpoint = rng.choice(["/api/a", "/api/b", "/api/c"])
        failing = endpoint == "/api/b" and 12 <= minute < 30 and rng.random() < 0.7
        slow = endpoint == "/api/c" and 24 <= minute < 36
        out.append((t + rng.randrange(0, 8_000), i, record(t, endpoint, 500 if failing else 200,
                                                          rng.uniform(2_000, 4_000) if slow else rng.uniform(5, 80))))
    return [r for _arrival, _i, r in sorted(out, key=lambda item: item[:2])]


def engine() -> RuleEngine:
    rules = load_rules()
    return RuleEngine(rules.compiled, rules.rule_file, rules.sha256)


def messages(producer: str, records: list[dict[str, Any]]) -> list[bytes]:
    """What ingest publishes for these records on a one-partition topic: batches of 200, then the final one."""
    builder = BatchBuilder(producer, "files", 1, max_records=200, lateness_ms=10_000)
    batches = builder.add([dict(r) for r in records]) + builder.flush(final=True)
    return [orjson.dumps(batch) for batch in batches]


def run(operator: PartitionOperator, values: list[bytes], first_offset: int = 0) -> tuple[list[bytes], list[bytes]]:
    snapshots, alerts = [], []
    for offset, value in enumerate(values, start=first_offset):
        step = operator.feed_message(value, offset)
        assert step.invalid is None
        snapshots += [orjson.dumps(snapshot(e)) for e in step.closed]
        alerts += [orjson.dumps(a) for a in step.alerts]
    return snapshots, alerts


def halves() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    records = traffic()
    cut = BASE_MS + CUT_MINUTE * PANE_MS
    return [r for r in records if r["event_time_ms"] < cut], [r for r in records if r["event_time_ms"] >= cut]


def test_a_producer_that_starts_after_every_other_ended_is_processed_as_usual() -> None:
    """Two ingests one after the other (the second after the first's final batch) give the snapshots and alerts of
    one ingest of the concatenated capture: nothing is late, the partition does not go deaf."""
    first, second = halves()
    whole = PartitionOperator(engine())
    expected = run(whole, messages("one", first + second))
    assert len(expected[1]) >= 4 and whole.ended

    split = PartitionOperator(engine())
    before = run(split, messages("first", first))
    assert split.ended and split.store.closed_until_ms == BASE_MS + CUT_MINUTE * PANE_MS  # not the far future
    after = run(split, messages("second", second), first_offset=1_000)
    assert split.store.open == {}
    assert (before[0] + after[0], before[1] + after[1]) == expected
    assert all(orjson.loads(s)["late_dropped"] == 0 for s in after[0])


def test_a_restart_between_two_ingests_changes_nothing() -> None:
    """The same, with the operator rebuilt from its snapshot and closed panes between the two ingests, as a
    restarted worker rebuilds it from its table."""
    first, second = halves()
    expected = run(PartitionOperator(engine()), messages("one", first + second))
    before = PartitionOperator(engine())
    kept: dict[int, list[Any]] = {}
    out: tuple[list[bytes], list[bytes]] = ([], [])
    for offset, value in enumerate(messages("first", first)):
        step = before.feed_message(value, offset)
        out[0].extend(orjson.dumps(snapshot(e)) for e in step.closed)
        out[1].extend(orjson.dumps(a) for a in step.alerts)
        for e in step.closed:
            kept.setdefault(e.start_ms, []).append([e.service, e.endpoint, closed_to_dict(e.pane)])
        for start in step.evicted_starts:
            kept.pop(start)
    saved = orjson.loads(orjson.dumps(before.snapshot()))
    closed = [(service, endpoint, start, closed_from_dict(orjson.loads(orjson.dumps(pane))))
              for start, panes in kept.items() for service, endpoint, pane in panes]
    after = PartitionOperator(engine())
    after.restore(saved, closed)
    assert after.ended and after.applied_offset == len(messages("first", first)) - 1
    snapshots, alerts = run(after, messages("second", second), first_offset=1_000)
    assert (out[0] + snapshots, out[1] + alerts) == expected


def test_a_gap_of_a_day_between_producers_loses_nothing() -> None:
    operator = PartitionOperator()
    run(operator, messages("monday", [record(BASE_MS + i * 1_000) for i in range(120)]))
    day = 24 * 60 * PANE_MS
    snapshots, _ = run(operator, messages("tuesday", [record(BASE_MS + day + i * 1_000) for i in range(120)]), 10)
    panes = [orjson.loads(s) for s in snapshots]
    assert [(p["total"], p["late_dropped"]) for p in panes] == [(60, 0), (60, 0)]


def test_a_checkpoint_after_a_thousand_producer_restarts_is_as_large_as_after_ten() -> None:
    """Every simulated minute a new ingest (producer id) sends a few records and ends; crashed producers in between
    never send their final batch. The checkpoint holds no trace of the ones that are gone."""
    operator = PartitionOperator(engine(), idle_producer_ms=60_000)
    sizes = {}
    offset = 0
    for i in range(1_000):
        t = BASE_MS + i * PANE_MS
        builder = BatchBuilder(f"ingest-{i}", "live", 1, lateness_ms=10_000)
        values = builder.add([record(t + k * 5_000) for k in range(12)]) + builder.flush(final=i % 7 != 0)
        for value in values:
            operator.feed_message(orjson.dumps(value), offset, published_ms=t + 59_000)
            offset += 1
        if i + 1 in (10, 1_000):
            sizes[i + 1] = len(orjson.dumps(operator.snapshot()))
    held = operator.snapshot()["watermark"]
    assert len(held["producers"]) <= 61  # the crashed ones heard from in the last hour of publish time
    assert sizes[1_000] <= sizes[10] * 1.1 + 4_096, sizes


def test_an_old_end_of_input_checkpoint_is_cured_on_restore() -> None:
    """Checkpoints before version 2 stored `closed_until_ms` = 2**62 once every producer had finished, so every
    later record was late, forever. Restored, the horizon is the end of the newest closed pane kept."""
    old = {"v": 1, "offset": 41, "alerts": [], "closed_until_ms": LEGACY_END_OF_INPUT_MS, "producers": {},
           "finished": ["host-1/files"], "seen": {}, "newest_seen_ms": None, "rows_read_today": {}, "open": []}
    earlier = PartitionOperator()
    earlier.feed("host-1/files", None, [dict(r, watermark_ms=BASE_MS) for r in
                                        (record(BASE_MS), record(BASE_MS + 61_000))], final=True)
    closed = [(service, endpoint, pane.start_ms, merge_held([pane]))
              for (service, endpoint), panes in earlier.store.history.items() for pane in panes]
    assert len(closed) == 2
    operator = PartitionOperator()
    operator.restore(old, closed)
    assert operator.ended and operator.applied_offset == 41
    assert operator.store.closed_until_ms == BASE_MS + 2 * PANE_MS
    value = messages("host-2/files", [record(BASE_MS + 10 * PANE_MS + i * 1_000) for i in range(30)])
    snapshots, _ = run(operator, value, 42)
    assert [(orjson.loads(s)["total"], orjson.loads(s)["late_dropped"]) for s in snapshots] == [(30, 0)]


def test_a_message_that_is_not_a_log_batch_costs_only_itself() -> None:
    operator = PartitionOperator()
    step = operator.feed_message(b"{not json", 5)
    assert step.invalid is not None and "not JSON" in step.invalid and operator.applied_offset == 5
    assert decode_pane_batch(messages("p", [record(BASE_MS)])[0]).records


def test_messages_deleted_before_they_were_applied_are_skipped_and_the_next_ones_apply() -> None:
    first, second = halves()
    operator = PartitionOperator()
    applied = messages("a", first)
    run(operator, applied)
    assert skip_deleted(operator, len(applied)) == 0  # nothing missed: nothing skipped
    assert skip_deleted(operator, len(applied) + 7) == 7  # 7 messages deleted unread: the next to apply is past them
    assert operator.applied_offset == len(applied) + 6
    assert skip_deleted(operator, 3) == 0  # a log start behind what was applied changes nothing
    snapshots, _alerts = run(operator, messages("b", second), first_offset=len(applied) + 7)
    assert snapshots and operator.applied_offset > len(applied) + 7
