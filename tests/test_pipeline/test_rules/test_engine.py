"""The rule engine on the default rules, driven by replay of generated records minute by minute."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.rules_files import DEFAULT_RULES, load_rules
from pipeline.replay import Replay
from pipeline.rules.engine import RuleEngine, fingerprint
from schemas.alerts import AlertEvent
from tests.test_pipeline.records import BASE_MS, d1, record

MIN = 60_000
EP = "/api/public/factory/templates/:slug"


def minute(m: int, total: int, status_of: callable, endpoint: str = EP, **fields: object) -> list[dict]:
    return [record(BASE_MS + m * MIN + i * (MIN // total), endpoint, status_of(i), **fields) for i in range(total)]


def replay_alerts(minutes: list[list[dict]], rules_path: Path = DEFAULT_RULES) -> list[dict]:
    rules = load_rules(rules_path)
    engine = RuleEngine(rules.compiled, rules.rule_file, rules.sha256)
    replay = Replay(lateness_ms=0)
    alerts: list[dict] = []
    for records in minutes:
        alerts += engine.on_panes_closed(replay.feed("s", records), replay.store)
    alerts += engine.on_panes_closed(replay.end("s"), replay.store)
    for alert in alerts:
        AlertEvent.model_validate(alert)
    return alerts


def changes(alerts: list[dict], rule: str) -> list[tuple[str, str, str | None]]:
    return [(a["change"], a["starts_at"][11:16], a["ends_at"] and a["ends_at"][11:16]) for a in alerts
            if a["rule"] == rule]


def test_high_error_rate_fires_after_ten_minutes_and_resolves() -> None:
    healthy = [minute(m, 100, lambda i: 200) for m in range(5)]
    failing = [minute(5 + m, 100, lambda i: 500 if i < 8 else 200) for m in range(12)]  # 8% errors
    recovered = [minute(17 + m, 100, lambda i: 200) for m in range(15)]
    alerts = replay_alerts(healthy + failing + recovered)
    # panes 12:05 … 12:14 breach: fires at the end of the tenth (12:15); resolves at the end of 12:17
    assert changes(alerts, "factory-high-error-rate") == [("firing", "12:15", None), ("resolved", "12:15", "12:18")]
    fired = next(a for a in alerts if a["rule"] == "factory-high-error-rate")
    assert fired["active_since"] == "2026-01-06T12:05:00.000Z"
    assert fired["value"] == pytest.approx(0.08) and fired["threshold"] == pytest.approx(0.05)
    assert fired["severity"] == "CRITICAL" and fired["channels"] == ["pagerduty", "slack-critical"]
    assert fired["labels"] == {"service": "svc", "endpoint": EP, "rule": "factory-high-error-rate"}
    assert fired["fingerprint"] == fingerprint("factory-high-error-rate", {"service": "svc", "endpoint": EP})
    assert fired["annotations"]["summary"] == f"svc {EP}: error rate 8.0% > 5% for 10 minutes"
    assert fired["provenance"]["sample_count"] == 100
    # the tiered Key Metrics alert: 5-minute windows, held 5 minutes, kept 5 minutes after clearing — one alert
    # that fires at the severity that holds when `for` is complete (the window is all 8 % minutes by then)
    tiered = [(a["change"], a["severity"], a["starts_at"][11:16]) for a in alerts if a["rule"] == "factory-error-rate"]
    assert tiered[0] == ("firing", "CRITICAL", "12:10") and tiered[-1][0] == "resolved"
    assert [change for change, _, _ in tiered].count("firing") == 1


def test_service_down_inhibits_the_error_rate_alerts() -> None:
    down = [minute(m, 50, lambda i: 503) for m in range(11)]
    alerts = replay_alerts(down)
    down_fired = next(a for a in alerts if a["rule"] == "factory-service-down")
    assert down_fired["starts_at"] == "2026-01-06T12:05:00.000Z" and down_fired["inhibited_by"] == []
    high = next(a for a in alerts if a["rule"] == "factory-high-error-rate" and a["change"] == "firing")
    assert high["inhibited_by"] == ["factory-service-down"]


def test_too_few_requests_hold_the_state() -> None:
    quiet = [minute(m, 3, lambda i: 500) for m in range(20)]  # 100% errors, but 3 requests a minute
    assert [a for a in replay_alerts(quiet) if a["rule"].startswith("factory-")] == []


def test_d1_connection_failures_fire_after_two_minutes() -> None:
    failing = [minute(m, 20, lambda i: 200, d1=[d1(error_code="connection_failed")]) for m in range(3)]
    alerts = replay_alerts(failing)
    assert changes(alerts, "d1-connection-failures")[:1] == [("firing", "12:02", None)]


def test_spike_threshold_override_for_the_templates_list() -> None:
    busy = [minute(m, 1500, lambda i: 200, endpoint="/api/public/factory/templates") for m in range(6)]
    busy += [minute(m, 1500, lambda i: 200, endpoint="/api/public/factory/capabilities") for m in range(6)]
    alerts = replay_alerts([sorted((r for m in busy for r in m), key=lambda r: r["event_time_ms"])])
    spiking = {a["labels"]["endpoint"] for a in alerts if a["rule"] == "factory-traffic-spike"}
    assert spiking == {"/api/public/factory/capabilities"}  # 1500/min is under the templates list's 2400


def test_rule_file_errors_name_file_line_and_reason(tmp_path: Path) -> None:
    from agents.rules_files import RuleFileError

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - name: x\n    condition: error_rate > 0.05\n    severity: HIGH\n"
                   "    fore: 5m\n")
    with pytest.raises(RuleFileError, match=r"bad.yaml:6: rules\[0\].fore: Extra inputs are not permitted"):
        load_rules(bad)
    bad.write_text("version: 1\nrules:\n  - name: x\n    condition: eror_rate > 0.05\n    severity: HIGH\n")
    with pytest.raises(RuleFileError, match=r"bad.yaml:4: .*unknown name 'eror_rate'"):
        load_rules(bad)
    bad.write_text("version: 1\nrules:\n  - name: x\n    condition: __import__('os').system('true')\n"
                   "    severity: HIGH\n")
    with pytest.raises(RuleFileError, match="unexpected character"):
        load_rules(bad)
