"""Alert events for notifier tests, shaped as the stream worker publishes them (schemas/alerts.py)."""

from __future__ import annotations

from typing import Any

from schemas.alerts import AlertEvent


def alert_event(rule: str = "factory-high-error-rate", change: str = "firing", severity: str = "CRITICAL",
                endpoint: str = "/api/public/factory/templates", service: str = "gateway",
                channels: list[str] | None = None, window_end: str = "2026-03-01T10:10:00Z",
                inhibited_by: list[str] | None = None, value: float = 0.125, threshold: float = 0.05,
                fingerprint: str | None = None) -> dict[str, Any]:
    state = "resolved" if change == "resolved" else "firing"
    event = {
        "v": 1, "rule": rule, "state": state, "change": change, "severity": severity,
        "labels": {"service": service, "endpoint": endpoint, "rule": rule},
        "annotations": {"summary": f"{service} {endpoint}: error rate {value:.1%} > 5% for 10 minutes"},
        "fingerprint": fingerprint or f"fp-{rule}-{service}-{endpoint}".replace("/", "_"),
        "active_since": "2026-03-01T10:00:00Z", "starts_at": "2026-03-01T10:10:00Z",
        "ends_at": window_end if state == "resolved" else None,
        "value": value, "threshold": threshold, "condition": "error_rate > 0.05",
        "channels": channels if channels is not None else ["pagerduty", "slack-critical"],
        "actions": ["Create incident", "Notify engineering lead", "Consider rollback"],
        "runbook_url": "https://runbooks.example.com/factory/high-error-rate",
        "inhibited_by": inhibited_by or [],
        "provenance": {"window_start": "2026-03-01T10:09:00Z", "window_end": window_end, "sample_count": 200,
                       "rules_hash": "0" * 64},
    }
    AlertEvent.model_validate(event)
    return event


def alert(**kwargs: Any) -> AlertEvent:
    return AlertEvent.model_validate(alert_event(**kwargs))


def rules_alerts() -> list[dict[str, Any]]:
    """Real alert events of the rule engine on the default rules: an endpoint down for 12 minutes, then healthy —
    `factory-service-down` fires and resolves, and the error-rate alerts it inhibits carry `inhibited_by`."""
    from agents.rules_files import load_rules
    from pipeline.replay import Replay
    from pipeline.rules.engine import RuleEngine
    from tests.test_pipeline.records import BASE_MS, record

    rules = load_rules()
    engine = RuleEngine(rules.compiled, rules.rule_file, rules.sha256)
    replay = Replay(lateness_ms=0)
    alerts: list[dict[str, Any]] = []
    for m in range(16):
        status = 503 if m < 12 else 200
        records = [record(BASE_MS + m * 60_000 + i * 1000, "/api/public/factory/templates", status)
                   for i in range(20)]
        alerts += engine.on_panes_closed(replay.feed("s", records), replay.store)
    alerts += engine.on_panes_closed(replay.end("s"), replay.store)
    return alerts


def service_alerts() -> list[dict[str, Any]]:
    """Real alert events of a service-wide rule (`group_by: [service]`, labels without `endpoint`), from both
    stages in one process: three endpoints of 20 requests a minute are 60 for the service, over its 50 for two
    minutes, then under it."""
    from pipeline.replay import Replay
    from pipeline.rules.compiled import compile_rules
    from pipeline.rules.engine import RuleEngine
    from schemas.rules import RuleFile
    from tests.test_pipeline.records import BASE_MS, record

    rule_file = RuleFile.model_validate({"rules": [{
        "name": "service-busy", "group_by": ["service"], "condition": "total > 50", "severity": "MEDIUM",
        "channels": ["slack-monitoring"], "annotations": {"summary": "{service}: {value:.0f} requests a minute"}}]})
    replay = Replay(lateness_ms=0, engine=RuleEngine(compile_rules(rule_file), rule_file, "sha"))
    alerts: list[dict[str, Any]] = []
    for m in range(4):
        per_endpoint = 20 if m < 2 else 10
        records = [record(BASE_MS + m * 60_000 + i * 1000, endpoint, service="gateway")
                   for endpoint in ("/a", "/b", "/c") for i in range(per_endpoint)]
        alerts += replay.step("s", records).alerts
    alerts += replay.step_end("s").alerts
    return alerts


def probe_alerts(url: str = "http://127.0.0.1:8080/health") -> list[dict[str, Any]]:
    """Real alert events of the uptime probe's rule: two failed checks fire, a successful one resolves."""
    from pipeline.probe_rule import ProbeRule
    from schemas.probes import ProbeRuleSpec

    rule = ProbeRule(ProbeRuleSpec())
    checks = [(False, 500, "status 500, expected 200"), (False, None, "no response within 10 s"), (True, 200, None)]
    return rule.on_results([{"v": 1, "url": url, "ok": ok, "status": status, "latency_ms": 4, "error": error,
                             "checked_at": 1_767_700_800_000 + i * 60_000}
                            for i, (ok, status, error) in enumerate(checks)])
