"""The probe rule: N consecutive failures fire, the first success resolves; times are the checks' times."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from pipeline.probe_rule import ProbeRule, ProbeState, missing_alerts, step, url_labels
from pipeline.timestamps import ms_to_iso
from schemas.alerts import AlertEvent
from schemas.probes import ProbeRuleSpec
from tests.alert_samples import probe_alerts, rules_alerts

URL = "http://127.0.0.1:8080/health"


def result(ok: bool, at: int, url: str = URL, status: int | None = 200) -> dict[str, Any]:
    return {"v": 1, "url": url, "ok": ok, "status": status if ok else 500, "latency_ms": 3,
            "error": None if ok else "status 500, expected 200", "checked_at": at}


def test_two_consecutive_failures_fire_once_and_the_first_success_resolves() -> None:
    rule = ProbeRule(ProbeRuleSpec())
    pattern = [True, False, True, False, False, False, True, True]
    alerts = rule.on_results([result(ok, 60_000 * i) for i, ok in enumerate(pattern)])
    assert [(a["change"], a["active_since"], a["starts_at"], a["ends_at"]) for a in alerts] == [
        ("firing", ms_to_iso(180_000), ms_to_iso(240_000), None),
        ("resolved", ms_to_iso(180_000), ms_to_iso(240_000), ms_to_iso(360_000)),
    ]
    for alert in alerts:
        AlertEvent.model_validate(alert)
    firing, resolved = alerts
    assert firing["fingerprint"] == resolved["fingerprint"]
    assert firing["labels"] == {"service": "127.0.0.1:8080", "endpoint": "/health", "url": URL,
                                "rule": "factory-uptime-probe"}
    assert firing["severity"] == "CRITICAL" and firing["channels"] == ["pagerduty", "slack-critical"]
    assert firing["value"] == 2.0 and firing["threshold"] == 2.0
    assert firing["annotations"]["summary"] == f"{URL} is down: 2 consecutive failed checks (status 500, expected 200)"
    assert resolved["provenance"]["sample_count"] == 4  # three failures and the success
    assert rule.states == {}


def test_probe_alerts_carry_every_field_rules_alerts_carry() -> None:
    """Subscribers read probe and rule alerts alike (`alert["silenced_by"]`, `provenance["input"]`): the probe's
    alerts have the same keys as the rule engine's and validate against the exported AlertEvent schema."""
    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "json" / "alert-event.json").read_text())
    rules = rules_alerts()
    probes = probe_alerts()
    assert [a["change"] for a in probes] == ["firing", "resolved"]
    for alert in probes:
        jsonschema.validate(alert, schema)
        AlertEvent.model_validate(alert)
        assert set(alert) == set(rules[0]) == set(AlertEvent.model_fields)
        assert set(alert["provenance"]) == set(rules[0]["provenance"])
        assert alert["silenced_by"] == [] and alert["inhibited_by"] == []
        assert alert["provenance"]["input"] is None


def test_a_single_failure_between_successes_never_fires() -> None:
    rule = ProbeRule(ProbeRuleSpec())
    assert rule.on_results([result(i % 2 == 0, 1000 * i) for i in range(20)]) == []


def test_failures_threshold_and_urls_are_independent() -> None:
    rule = ProbeRule(ProbeRuleSpec(failures=3))
    other = "https://example.test/health"
    results = [result(False, 1), result(False, 2, other), result(False, 3), result(False, 4, other),
               result(False, 5)]
    alerts = rule.on_results(results)
    assert [(a["labels"]["url"], a["starts_at"]) for a in alerts] == [(URL, ms_to_iso(5))]
    assert rule.states[other] == ProbeState("pending", 2, 2, None)


def test_step_is_deterministic_and_holds_firing_through_more_failures() -> None:
    state = ProbeState()
    seen = []
    for at, ok in [(10, False), (20, False), (30, False), (40, True)]:
        state, transition = step(state, ok, at, 2, "CRITICAL")
        seen.append(None if transition is None else (transition.change, transition.starts_at_ms,
                                                     transition.ends_at_ms))
    assert seen == [None, ("firing", 20, None), None, ("resolved", 20, 40)]


def test_labels_split_host_and_path() -> None:
    assert url_labels("https://gateway.erlvinc.com/health?x=1") == {
        "service": "gateway.erlvinc.com", "endpoint": "/health", "url": "https://gateway.erlvinc.com/health?x=1"}
    assert url_labels("http://h:1")["endpoint"] == "/"


def test_missing_alerts_are_the_unpublished_ones_after_the_last_published() -> None:
    rule = ProbeRule(ProbeRuleSpec())
    derived = rule.on_results([result(False, 1), result(False, 2), result(True, 3), result(False, 4),
                               result(False, 5), result(True, 6)])
    assert [a["change"] for a in derived] == ["firing", "resolved", "firing", "resolved"]
    assert missing_alerts(derived, derived) == []
    assert missing_alerts(derived, derived[:3]) == derived[3:]  # the crash lost the last resolve
    assert missing_alerts(derived, []) == derived
    # an older transition not on the topic (e.g. the rule changed since) is not re-published
    assert missing_alerts(derived, [derived[2]]) == [derived[3]]
