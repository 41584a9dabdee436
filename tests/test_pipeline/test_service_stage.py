"""The service stage: completeness across partitions, duplicates and late panes, merging, checkpoints, service
rules and held alerts, and that the partitions' interleaving changes nothing."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from pipeline.metrics import snapshot
from pipeline.pane_store import PaneStore
from pipeline.panes import ClosedPane
from pipeline.partition_operator import Progress, Step
from pipeline.replay import Replay
from pipeline.rules.compiled import compile_rules
from pipeline.rules.engine import RuleEngine, fingerprint
from pipeline.service import (
    ServiceOperator,
    service_pane_from_dict,
    service_pane_to_dict,
    service_partition,
    service_snapshot,
    stage_messages,
)
from pipeline.service.store import pane_as_published
from pipeline.sketches import from_dict, merge_digests, to_dict
from pipeline.timestamps import ms_to_iso
from pipeline.windows import PANE_MS
from schemas.alerts import AlertEvent
from schemas.metrics import HeldAlert, PaneSnapshot, PartitionProgress, ServicePaneSnapshot
from schemas.rules import RuleFile
from tests.test_pipeline.records import BASE_MS, record
from tests.test_pipeline.service_traffic import (
    drive,
    engines,
    interleave,
    outputs,
    partition_messages,
    partition_steps,
    traffic,
)


def pane(endpoint: str, minute: int, statuses: list[int], service: str = "svc", base: float = 10.0) -> dict[str, Any]:
    """The snapshot stage 1 publishes for one endpoint pane."""
    start = BASE_MS + minute * PANE_MS
    store = PaneStore()
    store.add([record(start + i, endpoint, status, base + i, service=service) for i, status in enumerate(statuses)])
    return snapshot(store.close_all()[0])


def progress(partition: int, minute: int | None, partitions: int = 2, ended: bool = False) -> dict[str, Any]:
    closed = None if minute is None else BASE_MS + minute * PANE_MS
    return PartitionProgress(partition=partition, partitions=partitions, closed_until_ms=closed,
                             ended=ended).model_dump()


def closed_of(operator: ServiceOperator, values: list[dict[str, Any]]) -> list[tuple[str, int, int, int]]:
    """(service, minute, endpoints merged, total) of each service pane the values closed."""
    return [(e.service, (e.start_ms - BASE_MS) // PANE_MS, len(e.endpoints), e.pane.total)
            for value in values for e in operator.feed(value).closed]


def test_nothing_closes_before_every_partition_is_heard() -> None:
    operator = ServiceOperator()
    assert closed_of(operator, [pane("/a", 0, [200] * 3), progress(0, 5, partitions=3), progress(2, 5, 3)]) == []
    assert operator.partitions_heard == 2
    assert closed_of(operator, [progress(1, 1, 3)]) == [("svc", 0, 1, 3)]
    assert operator.partitions_heard == 3


def test_a_slow_partition_delays_a_service_pane_and_never_makes_it_partial() -> None:
    """Partition 0 is far ahead; partition 1's pane of minute 0 comes much later: the service pane waits for it."""
    operator = ServiceOperator()
    early = [pane("/a", 0, [200] * 4), pane("/a", 1, [200] * 2), progress(0, 2), progress(1, 0)]
    assert closed_of(operator, [*early, progress(0, 30)]) == []
    assert closed_of(operator, [pane("/b", 0, [500] * 6)]) == []
    assert closed_of(operator, [progress(1, 1)]) == [("svc", 0, 2, 10)]
    assert closed_of(operator, [pane("/b", 1, [200]), progress(1, 3)]) == [("svc", 1, 2, 3)]


def test_an_ended_partition_holds_nothing_back() -> None:
    operator = ServiceOperator()
    assert closed_of(operator, [progress(1, None, ended=True), pane("/a", 0, [200]), pane("/a", 1, [200])]) == []
    assert closed_of(operator, [progress(0, 1)]) == [("svc", 0, 1, 1)]
    # when every partition has ended, the panes that exist close (not the future)
    assert closed_of(operator, [pane("/a", 3, [200]), progress(0, 1, ended=True)]) == [("svc", 1, 1, 1),
                                                                                       ("svc", 3, 1, 1)]
    assert operator.store.closed_until_ms == BASE_MS + 4 * PANE_MS
    # a partition that starts again holds back again
    assert closed_of(operator, [progress(1, 4), pane("/a", 5, [200]), progress(0, 9)]) == []
    assert closed_of(operator, [progress(1, 6)]) == [("svc", 5, 1, 1)]


def test_duplicates_are_skipped_and_counted() -> None:
    """A stage-1 worker restarted from its checkpoint publishes the same panes again: open or closed, they are
    merged once."""
    operator = ServiceOperator()
    a0, b0 = pane("/a", 0, [200] * 3), pane("/b", 0, [200] * 2)
    steps = [operator.feed(value) for value in (progress(1, None, ended=True), a0, b0, a0)]
    assert [s.duplicates for s in steps] == [0, 0, 0, 1]
    assert closed_of(operator, [progress(0, 1)]) == [("svc", 0, 2, 5)]
    again = [operator.feed(value) for value in (a0, b0, progress(0, 1))]
    assert [(s.duplicates, s.late_endpoint_panes, s.closed) for s in again] == [(1, 0, []), (1, 0, []), (0, 0, [])]
    assert closed_of(operator, [pane("/a", 1, [200]), progress(0, 2)]) == [("svc", 1, 1, 1)]
    assert operator.store.history["svc"][-1].late_endpoint_panes == 0


def test_late_endpoint_panes_are_counted_and_not_merged() -> None:
    operator = ServiceOperator()
    assert closed_of(operator, [progress(1, None, ended=True), pane("/a", 0, [200] * 3), progress(0, 2)]) == [
        ("svc", 0, 1, 3)]
    step = operator.feed(pane("/b", 0, [500] * 7))  # its service pane closed without it
    assert step.late_endpoint_panes == 1 and step.duplicates == 0 and step.closed == []
    step = operator.feed(pane("/b", 1, [500] * 7))  # a minute that had no service pane: late as well
    assert step.late_endpoint_panes == 1
    operator.feed(pane("/a", 2, [200]))
    closed = operator.feed(progress(0, 3)).closed
    assert [(e.pane.total, e.endpoints, e.late_endpoint_panes) for e in closed] == [(1, ("/a",), 2)]
    assert service_snapshot(closed[0])["late_endpoint_panes"] == 2
    assert operator.store.history["svc"][0].pane.total == 3  # the closed pane stays as it closed


def test_a_service_pane_is_the_sum_of_its_endpoint_panes_in_any_arrival_order() -> None:
    panes = [pane("/c", 0, [200, 200, 404], base=30.0), pane("/a", 0, [500, 200, 301], base=5.0),
             pane("/b", 0, [200] * 5, base=200.0), pane("/a", 0, [200], service="other")]
    seen = []
    for seed in range(4):
        order = list(panes)
        random.Random(seed).shuffle(order)
        operator = ServiceOperator()
        closed = [e for v in [progress(0, None, 1), *order, progress(0, 1, 1)] for e in operator.feed(v).closed]
        seen.append([orjson.dumps(service_snapshot(e)) for e in closed])
    assert all(s == seen[0] for s in seen)
    svc = orjson.loads(seen[0][1])
    ServicePaneSnapshot.model_validate(svc)
    mine = sorted(panes[:3], key=lambda p: p["endpoint"])
    assert svc["endpoints"] == 3 and svc["service"] == "svc"
    for key in ("total", "responses", "count_2xx", "count_3xx", "count_4xx", "count_5xx", "count_404",
                "duration_count", "d1_queries", "late_dropped"):
        assert svc[key] == sum(p[key] for p in mine), key
    assert svc["status"] == {"200": 8, "301": 1, "404": 1, "500": 1}
    assert svc["status_class"] == {"2xx": 8, "3xx": 1, "4xx": 1, "5xx": 1}
    assert svc["duration_sum_ms"] == round(sum(p["duration_sum_ms"] for p in mine), 3)
    assert svc["duration_digest"] == to_dict(merge_digests(from_dict(p["duration_digest"]) for p in mine))
    assert svc["p50_ms"] is not None and svc["error_rate"] == round(2 / 11, 6)


def test_stage_messages_send_panes_then_held_alerts_then_progress() -> None:
    store = PaneStore()
    store.add([record(BASE_MS)])
    event = store.close_all()[0]
    alert = {"rule": "x", "labels": {"service": "svc", "endpoint": "/a", "rule": "x"}}
    step = Step(closed=[event], held=[alert], progress=Progress(BASE_MS + PANE_MS, False))
    sent = stage_messages(step, 3, 4)
    assert [service for service, _ in sent] == ["svc", "svc", None]
    assert orjson.dumps(sent[0][1]) == orjson.dumps(snapshot(event))  # its digests are their JSON text already
    assert PaneSnapshot.model_validate_json(orjson.dumps(sent[0][1]))
    assert sent[1][1] == {"v": 1, "kind": "held_alert", "partition": 3, "alert": alert}
    assert PartitionProgress.model_validate(sent[2][1]).closed_until_ms == BASE_MS + PANE_MS
    assert stage_messages(Step(), 3, 4) == []  # progress goes out only when it changed
    assert {service_partition(f"s{i}", 4) for i in range(40)} == {0, 1, 2, 3}
    assert service_partition("svc", 4) == service_partition("svc", 4)


def test_progress_is_pane_aligned_and_sent_only_when_it_changes() -> None:
    streams = partition_messages(traffic(minutes=6), 2, stage1_engines=False)
    for stream in streams:
        marks = [(v["closed_until_ms"], v["ended"]) for service, v in stream if service is None]
        assert all(m is None or m % PANE_MS == 0 for m, _ in marks)
        assert len(marks) == len(set(marks)) and marks[-1][1] is True
        assert len(marks) <= 6 + 2


def test_partitions_interleaved_in_any_order_give_the_same_service_panes_and_alerts() -> None:
    """What stage 2 decides depends on each logs partition's own sequence only: three partitions sent in a round
    robin, in random orders or one after another give the same service panes and alerts."""
    streams = partition_messages(traffic(), 3)
    results = []
    for seed in (None, 1, 2, 3):
        operator = ServiceOperator(engines("service"))
        steps = [*drive(operator, interleave(streams, seed)), operator.end()]
        snapshots, alerts = outputs(steps)
        results.append((sorted(orjson.dumps(s) for s in snapshots), sorted(orjson.dumps(a) for a in alerts)))
    operator = ServiceOperator(engines("service"))
    steps = [*drive(operator, [v for stream in streams for v in stream]), operator.end()]
    snapshots, alerts = outputs(steps)
    results.append((sorted(orjson.dumps(s) for s in snapshots), sorted(orjson.dumps(a) for a in alerts)))
    assert all(r == results[0] for r in results)
    assert len(snapshots) == 40 and {s["service"] for s in snapshots} == {"svc", "api"}
    assert sum(s["total"] for s in snapshots) == len(traffic())
    assert all(s["late_endpoint_panes"] == 0 for s in snapshots)


def test_a_service_rule_fires_on_the_merged_panes_and_inhibits_held_endpoint_alerts() -> None:
    """`svc` is over 150 requests a minute from minute 5 to 12 (each endpoint far below): `svc-busy` fires once
    `for: 2m` held; `ep-errors` on /api/b (minutes 6–10) is held by stage 1 and released by stage 2 after the
    service pane of its minute, inhibited while `svc-busy` fires."""
    stage1_alerts: list[dict[str, Any]] = []
    streams = partition_messages(traffic(), 3, stage1_alerts=stage1_alerts)
    held = [v for stream in streams for service, v in stream if v.get("kind") == "held_alert"]
    assert held and all(HeldAlert.model_validate(v).alert.rule == "ep-errors" for v in held)
    assert {a["rule"] for a in stage1_alerts} == {"ep-slow"}  # not held: no service-wide source mutes it
    operator = ServiceOperator(engines("service"))
    _snapshots, alerts = outputs([*drive(operator, interleave(streams, 7)), operator.end()])
    for alert in alerts:
        AlertEvent.model_validate(alert)
    busy = [(a["change"], a["provenance"]["window_end"][11:16], "endpoint" in a["labels"])
            for a in alerts if a["rule"] == "svc-busy"]
    assert busy == [("firing", "12:07", False), ("resolved", "12:13", False)]
    errors = [(a["change"], a["provenance"]["window_end"][11:16], a["inhibited_by"]) for a in alerts
              if a["rule"] == "ep-errors"]
    assert errors == [("firing", "12:07", ["svc-busy"]), ("resolved", "12:11", ["svc-busy"])]
    # released right after the service pane of its minute was evaluated
    firing = next(i for i, a in enumerate(alerts) if a["rule"] == "svc-busy" and a["change"] == "firing")
    assert alerts[firing + 1]["rule"] == "ep-errors" and alerts[firing + 1]["change"] == "firing"
    assert operator.held == []


def test_in_one_process_the_steps_give_what_the_published_values_give() -> None:
    """Replay and the backtest hand stage 1's steps to stage 2 without the snapshot dicts (`feed_step`); the live
    stage reads the published JSON (`feed_message`). Same service panes and alerts, in the same order."""
    per_partition = partition_steps(traffic(), 3)
    order = interleave([[(p, step) for step in steps] for p, steps in enumerate(per_partition)], 5)
    direct, published = ServiceOperator(engines("service")), ServiceOperator(engines("service"))
    direct_steps = [direct.feed_step(step, p, 3) for p, step in order]
    values = [value for p, step in order for _service, value in stage_messages(step, p, 3)]
    published_steps = [published.feed_message(orjson.dumps(value), i) for i, value in enumerate(values)]
    expected = outputs(published_steps)
    got = outputs(direct_steps)
    assert len(expected[0]) == 40 and expected[1]
    assert [orjson.dumps(s) for s in got[0]] == [orjson.dumps(s) for s in expected[0]]
    assert [orjson.dumps(a) for a in got[1]] == [orjson.dumps(a) for a in expected[1]]
    # The live worker reading back what it sent itself (`feed_sent`): the same, and the offsets applied.
    sent = ServiceOperator(engines("service"))
    sent_steps = []
    for i, (value, pane) in enumerate(sent_values(order)):
        sent_steps.append(sent.feed_sent(value, pane, i))
        assert sent.applied_offset == i
    got = outputs(sent_steps)
    assert [orjson.dumps(s) for s in got[0]] == [orjson.dumps(s) for s in expected[0]]
    assert [orjson.dumps(a) for a in got[1]] == [orjson.dumps(a) for a in expected[1]]
    assert sent.snapshot() == published.snapshot()


def sent_values(order: list[tuple[int, Step]]) -> Iterator[tuple[dict[str, Any], ClosedPane | None]]:
    """What the worker's logs stage keeps of each value it sends (agents/service_worker.py, `SentValues`)."""
    for p, step in order:
        for i, (_service, value) in enumerate(stage_messages(step, p, 3)):
            if value.get("kind") is None:
                yield ({key: value[key] for key in ("service", "endpoint", "window_start_ms")},
                       pane_as_published(step.closed[i].pane))
            else:
                yield value, None


def run_with_restart(values: list[Any], checkpoint_at: int, crash_at: int) -> tuple[list[Any], list[Any]]:
    """Run to `crash_at`, keeping the closed service panes as a table would and a checkpoint taken after value
    `checkpoint_at`; rebuild from them (JSON round trip) and apply everything after the checkpoint again."""
    first = ServiceOperator(engines("service"))
    kept: dict[tuple[str, int], dict[str, Any]] = {}
    steps, saved = [], None
    for i, value in enumerate(values[:crash_at]):
        step = first.feed_message(orjson.dumps(value), i)
        assert step.invalid is None, step.invalid
        steps.append(step)
        for event in step.closed:
            kept[(event.service, event.start_ms)] = service_pane_to_dict(event)
        for start in step.evicted_starts:
            kept = {key: v for key, v in kept.items() if key[1] != start}
        if i == checkpoint_at:
            saved = orjson.loads(orjson.dumps(first.snapshot()))
            steps_at_checkpoint = len(steps)
    assert saved is not None
    second = ServiceOperator(engines("service"))
    second.restore(saved, [service_pane_from_dict(orjson.loads(orjson.dumps(v))) for v in kept.values()])
    assert second.applied_offset == checkpoint_at
    rest = [second.feed_message(orjson.dumps(v), i) for i, v in enumerate(values) if i > checkpoint_at]
    return outputs(steps[:steps_at_checkpoint] + rest + [second.end()])


@pytest.mark.parametrize(("checkpoint_at", "crash_at"), [(150, 151), (120, 200), (40, 41), (200, 266)])
def test_a_restore_mid_stream_gives_what_an_uninterrupted_run_gives(checkpoint_at: int, crash_at: int) -> None:
    values = [v for _s, v in interleave(partition_messages(traffic(), 3), 11)]
    operator = ServiceOperator(engines("service"))
    expected = outputs([operator.feed_message(orjson.dumps(v), i) for i, v in enumerate(values)] + [operator.end()])
    assert len(values) > 260 and expected[1]
    snapshots, alerts = run_with_restart(values, checkpoint_at, crash_at)
    assert [orjson.dumps(s) for s in snapshots] == [orjson.dumps(s) for s in expected[0]]
    assert [orjson.dumps(a) for a in alerts] == [orjson.dumps(a) for a in expected[1]]


@pytest.mark.parametrize(
    ("value", "reason"),
    [(None, "a tombstone"), (b"{oops", "not JSON"), (b"[1]", "not a JSON object"),
     (b'{"kind": "nope"}', "unknown kind 'nope'"),
     (b'{"kind": "progress", "partition": -1, "partitions": 2, "closed_until_ms": null, "ended": false}',
      "not a PartitionProgress: partition"),
     (b'{"service": "svc"}', "not a PaneSnapshot")],
)
def test_a_value_that_is_not_a_metrics_value_costs_only_itself(value: bytes | None, reason: str) -> None:
    operator = ServiceOperator()
    operator.feed(progress(0, None, 1))
    before = orjson.dumps(operator.snapshot())
    step = operator.feed_message(value, 9)
    assert step.invalid is not None and reason in step.invalid, step.invalid
    assert operator.applied_offset == 9
    assert orjson.dumps({**operator.snapshot(), "offset": -1}) == before


def test_a_pane_of_another_length_is_refused() -> None:
    value = {**pane("/a", 0, [200]), "window_end_ms": BASE_MS + 2 * PANE_MS}
    step = ServiceOperator().feed_message(orjson.dumps(value), 0)
    assert step.invalid is not None and "not a 60000 ms pane" in step.invalid


def test_closed_service_panes_and_held_alerts_stay_bounded() -> None:
    """Six hours of one pane a minute for 5 services: the stage holds at most the retention (60 closed panes) per
    service, says which starts it evicted, and holds no alert once its minute closed."""
    operator = ServiceOperator(retention_ms=60 * PANE_MS)
    evicted: list[int] = []
    held_most = 0
    alert = {"rule": "x", "labels": {"service": "s0", "endpoint": "/a", "rule": "x"}, "inhibited_by": [],
             "severity": "HIGH"}
    for minute in range(360):
        for service in range(5):
            operator.feed(pane("/a", minute, [200], service=f"s{service}"))
        operator.feed({"v": 1, "kind": "held_alert", "partition": 0, "alert": {
            **alert, "provenance": {"window_end": ms_to_iso(BASE_MS + (minute + 1) * PANE_MS)}}})
        held_most = max(held_most, len(operator.held))
        evicted += operator.feed(progress(0, minute + 1, 1)).evicted_starts
        assert operator.store.panes_held() <= 5 * 60
    assert held_most == 1 and operator.held == []
    assert evicted == [BASE_MS + m * PANE_MS for m in range(360 - 60)]
    assert len(orjson.dumps(operator.snapshot())) < 2_000


def test_a_backlog_closed_at_once_leaves_only_the_retention_held() -> None:
    """A slow logs partition catches up: ten hours of service panes close in one step. The rules read the windows of
    every one of them (a 60-minute rule over the whole backlog), then only the retention stays held."""
    rules = RuleFile.model_validate({"rules": [
        {"name": "svc-busy", "group_by": ["service"], "condition": "total > 100", "window": "60m",
         "severity": "MEDIUM"}]})
    operator = ServiceOperator(RuleEngine(compile_rules(rules), rules, "0" * 64, stage="service"),
                               retention_ms=60 * PANE_MS)
    for minute in range(600):
        operator.feed(pane("/a", minute, [200, 200]))
        operator.feed(progress(0, minute + 1))  # partition 1 says nothing yet: nothing closes
    assert operator.store.panes_held() == 600
    step = operator.feed(progress(1, 600))
    assert len(step.closed) == 600
    # 2 requests a minute: the 60-minute window passes 100 at minute 50 — only if each closed pane saw its window.
    assert [a["change"] for a in step.alerts] == ["firing", "repeat", "repeat"]  # repeat_interval 4h
    assert step.alerts[0]["provenance"]["window_end"] == ms_to_iso(BASE_MS + 51 * PANE_MS)
    assert operator.store.panes_held() == 60
    assert step.evicted_starts == [BASE_MS + m * PANE_MS for m in range(540)]


def test_a_service_rule_inhibits_another_service_rule_inside_the_stage() -> None:
    """`equal: [service]` between two service-wide rules: the source, listed first, mutes the target on the pane
    where both fire; labels carry no endpoint and the fingerprint is the service's."""
    rules = RuleFile.model_validate({
        "rules": [{"name": "svc-down", "group_by": ["service"], "condition": "success_rate < 0.5",
                   "severity": "CRITICAL"},
                  {"name": "svc-errors", "group_by": ["service"], "condition": "error_rate > 0.3",
                   "severity": "HIGH"}],
        "inhibit": [{"source": "svc-down", "targets": ["svc-errors"], "equal": ["service"]}]})
    engine = RuleEngine(compile_rules(rules), rules, "hash", stage="service")
    assert RuleEngine(compile_rules(rules), rules, "hash").rules == []  # stage 1 holds none of them
    operator = ServiceOperator(engine)
    alerts = [a for v in [progress(0, None, 1), pane("/a", 0, [500] * 4), pane("/b", 0, [200, 500]),
                          progress(0, 1, 1)] for a in operator.feed(v).alerts]
    assert [(a["rule"], a["inhibited_by"], a["labels"]) for a in alerts] == [
        ("svc-down", [], {"service": "svc", "rule": "svc-down"}),
        ("svc-errors", ["svc-down"], {"service": "svc", "rule": "svc-errors"})]
    assert alerts[0]["fingerprint"] == fingerprint("svc-down", {"service": "svc"})
    assert alerts[0]["value"] == round(1 / 6, 6) and alerts[0]["provenance"]["sample_count"] == 6


def test_a_replay_in_one_partition_gives_what_three_partitions_and_their_service_stage_give() -> None:
    """`Replay` (one logs partition, its own service stage) against three partitions whose steps meet in one
    service stage: the same endpoint alerts, service alerts, released held alerts and service panes."""
    records = traffic()
    replay = Replay(lateness_ms=10_000, engine=engines("endpoint"))
    steps = [replay.step("ingest", [dict(r) for r in records[i:i + 40]]) for i in range(0, len(records), 40)]
    steps.append(replay.step_end("ingest"))
    one = (sorted(orjson.dumps(service_snapshot(e)) for s in steps for e in s.service_closed),
           sorted(orjson.dumps(a) for s in steps for a in s.alerts))
    stage1_alerts: list[dict[str, Any]] = []
    streams = partition_messages(records, 3, stage1_alerts=stage1_alerts)
    operator = ServiceOperator(engines("service"))
    snapshots, alerts = outputs([*drive(operator, interleave(streams, 3)), operator.end()])
    three = (sorted(orjson.dumps(s) for s in snapshots), sorted(orjson.dumps(a) for a in stage1_alerts + alerts))
    assert len(one[0]) == 40 and {orjson.loads(a)["rule"] for a in one[1]} == {"svc-busy", "ep-errors", "ep-slow"}
    assert one == three
