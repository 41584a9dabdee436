"""Alert events become firing spans per rule and endpoint, split into severity segments."""

from __future__ import annotations

from typing import Any

from pipeline.report.timeline import alert_scope, alert_spans
from pipeline.timestamps import ms_to_iso
from tests.test_pipeline.records import BASE_MS

MINUTE = 60_000


def event(change: str, minute: int, severity: str = "HIGH", rule: str = "r", endpoint: str = "/a",
          started: int | None = None, ended: int | None = None) -> dict[str, Any]:
    state = "resolved" if change == "resolved" else "firing"
    return {
        "rule": rule, "state": state, "change": change, "severity": severity,
        "labels": {"service": "svc", "endpoint": endpoint, "rule": rule}, "fingerprint": f"{rule}{endpoint}",
        "starts_at": ms_to_iso(BASE_MS + (started if started is not None else minute) * MINUTE),
        "ends_at": None if ended is None else ms_to_iso(BASE_MS + ended * MINUTE),
        "provenance": {"window_end": ms_to_iso(BASE_MS + minute * MINUTE)},
    }


def test_firing_escalation_and_resolve_give_one_span_with_segments() -> None:
    events = [event("firing", 5), event("escalated", 8, "CRITICAL", started=5), event("deescalated", 12, started=5),
              event("resolved", 15, started=5, ended=15)]
    [span] = alert_spans(events, BASE_MS + 30 * MINUTE)
    assert (span["start_ms"], span["end_ms"], span["open"]) == (BASE_MS + 5 * MINUTE, BASE_MS + 15 * MINUTE, False)
    assert span["severity"] == "CRITICAL"
    assert [(s["severity"], (s["start_ms"] - BASE_MS) // MINUTE, (s["end_ms"] - BASE_MS) // MINUTE)
            for s in span["segments"]] == [("HIGH", 5, 8), ("CRITICAL", 8, 12), ("HIGH", 12, 15)]


def test_duplicates_count_once_and_open_spans_reach_the_window_end() -> None:
    events = [event("firing", 5), event("firing", 5), event("repeat", 9), event("firing", 7, rule="q")]
    spans = alert_spans(events, BASE_MS + 20 * MINUTE)
    assert [(s["rule"], s["open"], (s["end_ms"] - BASE_MS) // MINUTE) for s in spans] == [("q", True, 20),
                                                                                          ("r", True, 20)]
    assert len(spans[1]["segments"]) == 1


def test_a_rule_that_fires_twice_has_two_spans_and_a_lone_resolve_none() -> None:
    events = [event("resolved", 3, ended=3), event("firing", 5), event("resolved", 6, started=5, ended=6),
              event("firing", 9), event("resolved", 11, started=9, ended=11)]
    spans = alert_spans(list(reversed(events)), None)  # order of arrival does not matter
    assert [((s["start_ms"] - BASE_MS) // MINUTE, (s["end_ms"] - BASE_MS) // MINUTE) for s in spans] == [(5, 6),
                                                                                                       (9, 11)]


def test_a_service_wide_alert_is_a_span_of_its_service() -> None:
    """A `group_by: [service]` rule's events have no endpoint label: their span is the service's."""
    wide = event("firing", 4, "MEDIUM", rule="factory-service-traffic-spike")
    del wide["labels"]["endpoint"]
    wide["fingerprint"] = "spike-svc"
    spans = alert_spans([wide, event("firing", 5)], BASE_MS + 10 * MINUTE)
    assert [(s["rule"], s["service"], s["endpoint"]) for s in spans] == [
        ("factory-service-traffic-spike", "svc", ""), ("r", "svc", "/a")]
    assert [alert_scope(s) for s in spans] == ["svc (whole service)", "/a"]
