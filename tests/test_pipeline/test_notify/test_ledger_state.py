"""The notifier's ledger state: bounded by open alerts (+ closed ones for an hour of event time, + in-flight
deliveries, + one read offset per partition), and what a restart reads back from its writes is the same state."""

from __future__ import annotations

import orjson

from pipeline.notify.keys import ALERT_PREFIX, READ_PREFIX
from pipeline.notify.ledger_state import CLOSED_KEPT_MS, Acknowledged, LedgerState, Write
from pipeline.notify.routing import Router
from pipeline.timestamps import iso_to_ms, ms_to_iso
from schemas.deliveries import AlertSource, Delivery
from tests.alert_samples import alert

ACTIVE = {"pagerduty": True, "slack-critical": True}
START_MS = iso_to_ms("2026-03-01T10:00:00Z")


def outcome(key: str, partition: int, offset: int) -> Delivery:
    fingerprint, transition, channel = key.split("/")
    return Delivery(key=key, fingerprint=fingerprint, transition=transition, channel=channel, kind="trigger",
                    outcome="delivered", attempts=1, finished_at="2026-03-01T10:00:00Z", rule="r",
                    severity="CRITICAL", source=AlertSource(partition=partition, offset=offset))


def replay(writes: list[Write]) -> LedgerState:
    """What a notifier reads back from the topic: every write, in order."""
    state = LedgerState()
    for key, value in writes:
        state.load(key, value)
    return state


def live_keys(writes: list[Write]) -> set[str]:
    last: dict[str, bytes | None] = {}
    for key, value in writes:
        last[key] = value
    return {key for key, value in last.items() if value is not None}


def test_many_transitions_keep_the_ledger_bounded_by_open_alerts() -> None:
    router, ledger, topic = Router(ACTIVE), LedgerState(), []
    offset = 0
    open_now = 0
    for minute in range(600):  # ten hours of event time, 50 alerts firing and resolving in turns
        window_end = ms_to_iso(START_MS + minute * 60_000)
        acked = []
        for n in range(50):
            if (minute + n) % 7 == 0:
                change = "firing"
            elif (minute + n) % 7 == 3:
                change = "resolved"
            else:
                continue
            event = alert(endpoint=f"/api/e{n}", change=change, window_end=window_end)
            routed = router.route(event)
            topic += ledger.record(outcome(d.key, 0, offset) for d in routed.deliveries)
            acked.append(Acknowledged(0, offset, None if routed.stale else router.status(event.fingerprint)))
            offset += 1
        steps, expired = ledger.acknowledge(acked)
        for step in steps:
            topic += step
        for status in expired:
            router.forget(status)
        open_now = len(router.open)
        # Open alerts, and closed ones of the last hour (at most 50 alerts here), and the one read offset.
        assert len(ledger.alerts) <= 50 and ledger.deliveries == {} and ledger.held <= 51
        assert router.alerts_held == len(ledger.alerts)
    assert offset > 8000 and open_now > 0
    live = live_keys(topic)
    assert len(live) == ledger.held  # on the topic, after compaction: as many keys as held in memory
    assert all(key.startswith((ALERT_PREFIX, READ_PREFIX)) for key in live)
    restarted = replay(topic)
    assert restarted.alerts == ledger.alerts and restarted.read == {0: offset}
    assert replay(ledger.live()).alerts == ledger.alerts  # a restatement holds the same


def test_a_closed_alert_is_forgotten_an_hour_of_event_time_after_its_last_event() -> None:
    router, ledger = Router(ACTIVE), LedgerState()
    fired = router.route(alert(window_end="2026-03-01T10:10:00Z"))
    resolved = router.route(alert(change="resolved", window_end="2026-03-01T10:30:00Z"))
    fingerprint = fired.deliveries[0].alert.fingerprint
    ledger.acknowledge([Acknowledged(0, 0, None), Acknowledged(0, 1, router.status(fingerprint))])
    assert resolved.deliveries and ledger.alerts[fingerprint].open == []
    later = ms_to_iso(iso_to_ms("2026-03-01T10:30:00Z") + CLOSED_KEPT_MS)
    other = router.route(alert(endpoint="/api/other", window_end=later))
    steps, expired = ledger.acknowledge([Acknowledged(0, 2, router.status(other.deliveries[0].alert.fingerprint))])
    assert expired == []  # exactly an hour: still kept
    later = ms_to_iso(iso_to_ms(later) + 1)
    other = router.route(alert(endpoint="/api/other", change="repeat", window_end=later))
    steps, expired = ledger.acknowledge([Acknowledged(0, 3, router.status(other.deliveries[0].alert.fingerprint))])
    assert [status.fingerprint for status in expired] == [fingerprint]
    assert (f"{ALERT_PREFIX}{fingerprint}", None) in steps[-1]


def test_acknowledging_writes_states_then_read_offsets_then_tombstones() -> None:
    router, ledger = Router(ACTIVE), LedgerState()
    routed = router.route(alert())
    records = ledger.record(outcome(d.key, 2, 7) for d in routed.deliveries)
    assert len(records) == 2 and ledger.has(routed.deliveries[0].key)
    steps, _ = ledger.acknowledge([Acknowledged(2, 7, router.status(routed.deliveries[0].alert.fingerprint))])
    assert [[key.split("/")[0] for key, _ in step] for step in steps] == [["alert"], ["read"], ["fp-factory-high"
                                                                                              "-error-rate-gateway-"
                                                                                              "_api_public_factory_"
                                                                                              "templates"] * 2]
    assert all(value is None for _, value in steps[2])
    assert orjson.loads(steps[1][0][1] or b"") == {"v": 1, "partition": 2, "next_offset": 8}
    assert ledger.deliveries == {} and ledger.handled(2, 7) and not ledger.handled(2, 8)


def test_a_crash_between_the_read_offset_and_the_tombstones_leaves_records_dropped_at_load() -> None:
    router, ledger = Router(ACTIVE), LedgerState()
    routed = router.route(alert())
    topic = ledger.record(outcome(d.key, 0, 0) for d in routed.deliveries)
    steps, _ = ledger.acknowledge([Acknowledged(0, 0, router.status(routed.deliveries[0].alert.fingerprint))])
    restarted = replay(topic + steps[0] + steps[1])  # the tombstones never landed
    assert len(restarted.deliveries) == 2
    assert restarted.loaded() == [steps[2]] and restarted.deliveries == {}


def test_a_ledger_of_outcomes_only_gets_alert_states_so_open_alerts_still_resolve() -> None:
    router, old = Router(ACTIVE), []  # a ledger written before alert states and read offsets existed
    fired = router.route(alert())
    old += [outcome(d.key, 1, 4) for d in fired.deliveries]
    resolve = Delivery.model_validate({**old[1].model_dump(), "key": "x/resolved@2026-03-01T10:30:00Z/slack-critical",
                                       "kind": "resolve", "source": {"partition": 1, "offset": 9}})
    ledger = replay([(record.key, orjson.dumps(record.model_dump())) for record in [*old, resolve]])
    [states] = ledger.loaded()
    fingerprint = fired.deliveries[0].alert.fingerprint
    assert [key for key, _ in states] == [f"{ALERT_PREFIX}{fingerprint}"]
    restarted = Router(ACTIVE)
    restarted.restore(ledger.statuses())
    assert restarted.open == {fingerprint: {"pagerduty"}}  # slack-critical was resolved
    resolved = restarted.route(alert(change="resolved", window_end="2026-03-01T10:30:00Z"))
    assert [(d.channel, d.kind) for d in resolved.deliveries] == [("pagerduty", "resolve")]
