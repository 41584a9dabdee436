"""Rule unit tests (`schemas.rule_tests`): expand the log fixtures, run them through the replay core (the
endpoint catalog, then both stages — the partition operator and the service operator — that `tailwatch replay` and
the live workers use) and compare the transitions with the expected ones. Pure: the caller loads files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.endpoint_catalog import EndpointCatalog
from pipeline.replay import Replay
from pipeline.routes import RouteTable
from pipeline.rules.compiled import CompiledRule
from pipeline.rules.engine import RuleEngine
from pipeline.rules.silences import SilenceSet
from pipeline.timestamps import iso_to_ms, ms_to_iso
from schemas.rule_tests import Expected, Record, RuleTestCase, RuleTestFile, Series, offset_ms
from schemas.rules import RuleFile

FEED_RECORDS = 500  # records per feed: the result does not depend on it (lateness is decided per record)
_TIME_FIELDS = ("at", "active_since", "starts_at", "ends_at")


def to_ms(text: str, start_ms: int) -> int:
    return iso_to_ms(text) if "T" in text else start_ms + offset_ms(text)


def _record(fields: Series | Record, t_ms: int) -> dict[str, Any]:
    return {
        "service": fields.service, "worker": fields.service, "endpoint": fields.endpoint, "method": fields.method,
        "path": fields.endpoint, "status": fields.status, "outcome": fields.outcome, "event_time_ms": t_ms,
        "duration_ms": fields.duration_ms, "duration_source": None if fields.duration_ms is None else "log",
        "cpu_ms": fields.cpu_ms, "wall_ms": None, "colo": None, "country": None, "tenant": None,
        "request_id": None, "level": None, "log_endpoint": None, "error_code": None, "error_message": None,
        "truncated": False,
        "d1": [{"database": "factory", "table": "t", **d1.model_dump()} for d1 in fields.d1],
    }


def expand(case: RuleTestCase, start_ms: int) -> list[dict[str, Any]]:
    """The case's records in arrival order: by event time + delay, then as listed."""
    arrivals: list[tuple[int, int, dict[str, Any]]] = []
    for item in case.input:
        if item.series is not None:
            series = item.series
            first, every, delay = start_ms + offset_ms(series.from_), offset_ms(series.every), offset_ms(series.delay)
            for i in range(series.count):
                t = first + i * every
                arrivals.append((t + delay, len(arrivals), _record(series, t)))
        elif item.record is not None:
            record = item.record
            t = start_ms + offset_ms(record.at)
            arrivals.append((t + offset_ms(record.delay), len(arrivals), _record(record, t)))
    arrivals.sort(key=lambda arrival: (arrival[0], arrival[1]))
    return [record for _, _, record in arrivals]


def run_case(case: RuleTestCase, test_file: RuleTestFile, rules: list[CompiledRule], rule_file: RuleFile,
             rules_hash: str) -> list[dict[str, Any]]:
    """The alert events of the checked rules (per endpoint and service-wide), in the order `replay` prints them."""
    start = iso_to_ms(test_file.start)
    silences = SilenceSet({"id": s.id, "matchers": [m.model_dump() for m in s.matchers],
                           "starts_at": ms_to_iso(to_ms(s.starts_at, start)),
                           "ends_at": ms_to_iso(to_ms(s.ends_at, start))} for s in case.silences)
    replay = Replay(offset_ms(test_file.lateness), engine=RuleEngine(rules, rule_file, rules_hash, silences))
    records = expand(case, start)
    EndpointCatalog(RouteTable().templates).assign(records)  # as ingest does: scanned paths fold into <unmatched>
    alerts: list[dict[str, Any]] = []
    for i in range(0, len(records), FEED_RECORDS):
        alerts += replay.step("test", records[i:i + FEED_RECORDS]).alerts
    alerts += replay.step_end("test").alerts
    checked = set(case.rules) if case.rules is not None else None
    alerts = [a for a in alerts if checked is None or a["rule"] in checked]
    return sorted(alerts, key=_order)


def _order(alert: dict[str, Any]) -> tuple[str, str, str, str, str]:
    labels = alert["labels"]
    return (alert["provenance"]["window_end"], labels["service"], labels.get("endpoint", ""), alert["rule"],
            alert["change"])


def _relative(iso: str | None, start_ms: int) -> str:
    if iso is None:
        return "-"
    delta = iso_to_ms(iso) - start_ms
    sign, delta = ("-" if delta < 0 else "+"), abs(delta)
    minutes, ms = divmod(delta, 60_000)
    return f"{sign}{minutes}m" + (f"{ms / 1000:g}s" if ms else "")


def _got_fields(alert: dict[str, Any]) -> dict[str, Any]:
    return {"rule": alert["rule"], "change": alert["change"], "severity": alert["severity"],
            "at": alert["provenance"]["window_end"], "active_since": alert["active_since"],
            "starts_at": alert["starts_at"], "ends_at": alert["ends_at"], "labels": alert["labels"],
            "value": alert["value"], "threshold": alert["threshold"], "inhibited_by": alert["inhibited_by"],
            "silenced_by": alert["silenced_by"]}


def mismatches(expected: Expected, alert: dict[str, Any], start_ms: int) -> list[str]:
    """The fields of `expected` that the alert does not have."""
    got = _got_fields(alert)
    wrong = []
    for name, want in expected.model_dump(exclude_defaults=True).items():
        have = got[name]
        if name in _TIME_FIELDS:
            ok = have is not None and iso_to_ms(have) == to_ms(want, start_ms)
        elif name == "labels":
            ok = all(have.get(k) == v for k, v in want.items())
        elif name in ("value", "threshold"):
            ok = have is not None and abs(have - want) <= 1e-6 * max(1.0, abs(want))
        else:
            ok = have == want
        if not ok:
            wrong.append(name)
    for name in ("rule", "change"):  # always compared
        if got[name] != getattr(expected, name) and name not in wrong:
            wrong.append(name)
    return wrong


def describe_expected(expected: Expected) -> str:
    fields = expected.model_dump(exclude_defaults=True, exclude={"rule", "change"})
    extra = " ".join(f"{k}={v}" for k, v in fields.items())
    return f"{expected.change:11} {expected.rule} {extra}".rstrip()


def describe_got(alert: dict[str, Any], start_ms: int) -> str:
    g = _got_fields(alert)
    times = " ".join(f"{name}={_relative(g[name], start_ms)}" for name in _TIME_FIELDS if g[name] is not None)
    labels = {k: v for k, v in g["labels"].items() if k != "rule"}
    extra = "".join(f" {name}={g[name]}" for name in ("inhibited_by", "silenced_by") if g[name])
    return (f"{g['change']:11} {g['rule']} severity={g['severity']} {times} value={g['value']} "
            f"threshold={g['threshold']} labels={labels}{extra}")


@dataclass
class CaseResult:
    name: str
    alerts: list[dict[str, Any]]
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def check_case(case: RuleTestCase, test_file: RuleTestFile, rules: list[CompiledRule], rule_file: RuleFile,
               rules_hash: str) -> CaseResult:
    start = iso_to_ms(test_file.start)
    known = {rule.spec.name for rule in rules}
    unknown = sorted({*(case.rules or []), *(e.rule for e in case.expect)} - known)
    if unknown:
        return CaseResult(case.name, [], [f"no such rule in the rule file: {', '.join(unknown)}"])
    alerts = run_case(case, test_file, rules, rule_file, rules_hash)
    result = CaseResult(case.name, alerts)
    lines = []
    for i in range(max(len(case.expect), len(alerts))):
        want = case.expect[i] if i < len(case.expect) else None
        got = alerts[i] if i < len(alerts) else None
        wrong = mismatches(want, got, start) if want is not None and got is not None else []
        if want is not None and got is not None and not wrong:
            continue
        lines.append(f"transition {i + 1}:" + (f" differs in {', '.join(wrong)}" if wrong else ""))
        lines.append(f"  expected: {describe_expected(want) if want is not None else '(none)'}")
        lines.append(f"  got:      {describe_got(got, start) if got is not None else '(none)'}")
    if lines:
        result.failures = [f"expected {len(case.expect)} transitions, got {len(alerts)}", *lines]
    return result
