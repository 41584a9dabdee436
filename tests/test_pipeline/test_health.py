"""The health verdict: every check must pass for 200 `healthy`; any failing one gives 503 `degraded`."""

from __future__ import annotations

import pytest

from pipeline.health import CHECKS, HealthFacts, HealthLimits, evaluate

NOW = 1_767_700_800_000  # 2026-01-06T12:00:00Z
LIMITS = HealthLimits(max_lag_messages=100, max_record_age_ms=60_000)
CHANNELS = frozenset({"pagerduty", "slack-critical"})


def facts(**changes: object) -> HealthFacts:
    base: dict[str, object] = {
        "broker_ok": True, "agents_running": True, "lag_by_partition": {0: 10, 1: 0}, "started_ms": NOW - 600_000,
        "last_message_ms": NOW - 5_000, "channels_configured": CHANNELS, "channels_required": CHANNELS}
    base.update(changes)
    return HealthFacts(**base)  # type: ignore[arg-type]


def test_all_checks_pass_healthy_200() -> None:
    report = evaluate(facts(), LIMITS, NOW)
    assert report.healthy and report.http_status == 200
    assert report.body["status"] == "healthy"
    assert report.body["timestamp"] == "2026-01-06T12:00:00.000Z"
    assert report.body["checks"] == dict.fromkeys(CHECKS, True)
    assert report.body["details"]["consumer_lag"] == {"messages": 10, "bound": 100, "partitions": {"0": 10, "1": 0}}
    assert report.body["details"]["last_record"]["age_s"] == 5.0


@pytest.mark.parametrize(("changes", "failing"), [
    ({"broker_ok": False, "broker_error": "KafkaConnectionError: refused"}, "broker"),
    ({"agents_running": False}, "agents"),
    ({"lag_by_partition": {0: 60, 1: 41}}, "consumer_lag"),
    ({"last_message_ms": NOW - 60_001}, "last_record"),
    ({"last_message_ms": None, "started_ms": NOW - 120_000}, "last_record"),  # nothing since start-up, too long
    ({"channels_configured": None}, "channels"),  # no channel configuration at all
    ({"channels_configured": frozenset()}, "channels"),
    ({"channels_configured": frozenset({"pagerduty"})}, "channels"),  # a rule routes to slack-critical
])
def test_one_failing_check_degrades_503(changes: dict[str, object], failing: str) -> None:
    report = evaluate(facts(**changes), LIMITS, NOW)
    assert not report.healthy and report.http_status == 503
    assert report.body["status"] == "degraded"
    assert [name for name, ok in report.body["checks"].items() if not ok] == [failing]


def test_bounds_are_inclusive_and_zero_age_bound_disables_the_check() -> None:
    at_bounds = facts(lag_by_partition={0: 100}, last_message_ms=NOW - 60_000)
    assert evaluate(at_bounds, LIMITS, NOW).healthy
    stale = facts(last_message_ms=NOW - 10 * 86_400_000)
    assert evaluate(stale, HealthLimits(max_record_age_ms=0), NOW).healthy


def test_a_new_worker_is_judged_from_its_start_and_details_say_why() -> None:
    report = evaluate(facts(last_message_ms=None, started_ms=NOW - 30_000,
                            channels_configured=frozenset({"pagerduty"})), LIMITS, NOW)
    assert report.body["checks"]["last_record"] is True
    assert report.body["details"]["last_record"] == {"age_s": 30.0, "bound_s": 60.0, "seen": False}
    assert report.body["details"]["channels"] == {"configured": ["pagerduty"], "missing": ["slack-critical"]}


def test_negative_lag_counts_as_none() -> None:
    """A broker that reports end offsets too low (the embedded one) must not hide another partition's lag."""
    report = evaluate(facts(lag_by_partition={0: -50, 1: 101}), LIMITS, NOW)
    assert report.body["checks"]["consumer_lag"] is False
    assert report.body["details"]["consumer_lag"]["messages"] == 101


def test_the_listener_is_degraded_while_kafka_fails_or_its_queue_is_full() -> None:
    from pipeline.health import ListenerFacts, evaluate_listener

    ok = evaluate_listener(ListenerFacts(None, 3, 64, 1_000), now_ms=3_500)
    assert ok.http_status == 200 and ok.body["details"]["last_request"] == {"age_s": 2.5}
    down = evaluate_listener(ListenerFacts("2 of 2 sends failed", 0, 64, None), now_ms=0)
    assert down.http_status == 503 and down.body["checks"] == {"kafka": False, "queue": True}
    assert down.body["details"]["kafka"] == {"error": "2 of 2 sends failed"}
    full = evaluate_listener(ListenerFacts(None, 64, 64, None), now_ms=0)
    assert full.http_status == 503 and full.body["checks"]["queue"] is False
