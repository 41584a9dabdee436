"""Lifecycle table tests through the rule engine: min_requests, no data, repeat, inhibition and silences.

Each row is a run of one-minute panes of one endpoint, one mark per minute:
`B` 10 requests, half failing (breaches `errors`); `D` 10 requests, all failing (breaches `errors` and `down`);
`.` 10 good requests; `q` 2 failing requests (under min_requests: unknown); `_` no request on this endpoint
(another endpoint keeps event time moving). Expected transitions: (rule, change, minute of the deciding pane's
end, silenced_by)."""

from __future__ import annotations

import pytest

from pipeline.replay import Replay
from pipeline.rules.compiled import RuleError, compile_rules
from pipeline.rules.engine import RuleEngine
from pipeline.rules.silences import SilenceSet
from pipeline.timestamps import ms_to_iso
from schemas.alerts import AlertEvent
from schemas.rules import RuleFile
from tests.test_pipeline.records import BASE_MS, record

MIN = 60_000
EP = "/api/x"


def rule_file(repeat: str | None = None) -> RuleFile:
    errors = {"name": "errors", "condition": "error_rate > 0.3", "for": "2m", "min_requests": 5,
              "severity": "HIGH", "channels": ["slack"], **({"repeat_interval": repeat} if repeat else {})}
    down = {"name": "down", "condition": "error_rate > 0.9", "for": "1m", "min_requests": 5, "severity": "CRITICAL"}
    return RuleFile.model_validate({"rules": [down, errors], "inhibit": [{"source": "down", "targets": ["errors"]}]})


def minute_records(m: int, mark: str) -> list[dict]:
    start = BASE_MS + m * MIN
    other = [record(start + 30_000, "/api/other", 200)]
    statuses = {"B": [500] * 5 + [200] * 5, "D": [500] * 10, ".": [200] * 10, "q": [500] * 2, "_": []}[mark]
    return other + [record(start + i * 1000, EP, status) for i, status in enumerate(statuses)]


def silence(sid: str, start_min: int, end_min: int, **labels: str) -> dict:
    return {"id": sid, "matchers": [{"name": k, "op": "=", "value": v} for k, v in labels.items()],
            "starts_at": ms_to_iso(BASE_MS + start_min * MIN), "ends_at": ms_to_iso(BASE_MS + end_min * MIN)}


def run(marks: str, repeat: str | None = None, silences: list[dict] | None = None) -> list[tuple]:
    rules = rule_file(repeat)
    engine = RuleEngine(compile_rules(rules), rules, "hash", SilenceSet(silences or []))
    replay = Replay(lateness_ms=0)
    alerts = []
    for m, mark in enumerate(marks):
        alerts += engine.on_panes_closed(replay.feed("s", minute_records(m, mark)), replay.store)
    alerts += engine.on_panes_closed(replay.end("s"), replay.store)
    out = []
    for alert in alerts:
        AlertEvent.model_validate(alert)
        if alert["labels"]["endpoint"] == EP:
            minute = (int(alert["provenance"]["window_end"][14:16]))
            out.append((alert["rule"], alert["change"], minute, alert["silenced_by"], alert["inhibited_by"]))
    return out


@pytest.mark.parametrize(
    ("marks", "expected"),
    [
        # min_requests: 2 requests a minute are unknown — neither breach nor clear; the state holds
        ("qqqqq", []),
        ("BqB..", [("errors", "firing", 3), ("errors", "resolved", 4)]),  # q is no evidence towards `for`
        ("BBqq.", [("errors", "firing", 2), ("errors", "resolved", 5)]),  # nor does it resolve
        # no data: minutes with no request on the endpoint close no pane of it. A firing alert holds ...
        ("BB__.", [("errors", "firing", 2), ("errors", "resolved", 5)]),
        # ... a pending one does not: `for` means continuous, and no evaluation saw those minutes (1m window)
        ("B__B.", []),
        ("B__BB.", [("errors", "firing", 5), ("errors", "resolved", 6)]),
    ],
)
def test_min_requests_and_no_data_hold_the_state(marks: str, expected: list[tuple]) -> None:
    assert [(rule, change, m) for rule, change, m, _, _ in run(marks)] == expected


def test_repeat_interval_renotifies_while_breaching() -> None:
    transitions = [(rule, change, m) for rule, change, m, _, _ in run("BBBBBBB.", repeat="2m")]
    assert transitions == [("errors", "firing", 2), ("errors", "repeat", 4), ("errors", "repeat", 6),
                           ("errors", "resolved", 8)]


def test_repeat_interval_defaults_to_four_hours() -> None:
    rules = rule_file()
    assert compile_rules(rules)[1].timing.repeat_interval_ms == 4 * 3_600_000
    assert [change for _, change, _, _, _ in run("B" * 20)] == ["firing"]  # 18 minutes firing: no reminder yet


def test_inhibition_marks_the_target_while_the_source_fires() -> None:
    got = run("BBDDBB..")
    # `down` fires at the end of minute 3 (for 1m: the first D completes it); `errors` fired at 2, before it
    assert [(r, c, m, inh) for r, c, m, _, inh in got] == [
        ("errors", "firing", 2, []), ("down", "firing", 3, []), ("down", "resolved", 5, []),
        ("errors", "resolved", 7, [])]
    got = run("DDBB..")  # the source fires first: the target's firing carries inhibited_by
    assert ("errors", "firing", 2, ["down"]) in [(r, c, m, inh) for r, c, m, _, inh in got]


@pytest.mark.parametrize(
    ("marks", "silences", "expected"),
    [
        # a silence over the firing: published, marked; its resolve is never silenced
        ("BBBB..", [silence("s1", 0, 60, rule="errors")],
         [("firing", 2, ["s1"]), ("resolved", 5, [])]),
        # the silence ends while the alert still fires: re-notified at the first evaluation past its end
        ("BBBBBB..", [silence("s1", 0, 4, rule="errors")],
         [("firing", 2, ["s1"]), ("repeat", 4, []), ("resolved", 7, [])]),
        # half-open range: a silence ending exactly at the firing pane's end does not cover it
        ("BBB..", [silence("s1", 0, 2, rule="errors")], [("firing", 2, []), ("resolved", 4, [])]),
        # a silence that starts after the firing was paged: the resolve still arrives, unmarked
        ("BBBB..", [silence("s1", 3, 60, rule="errors")], [("firing", 2, []), ("resolved", 5, [])]),
        # matchers must all hold: another endpoint's silence, or another rule's, does not apply
        ("BBB..", [silence("s1", 0, 60, rule="errors", endpoint="/api/other")],
         [("firing", 2, []), ("resolved", 4, [])]),
        ("BBB..", [silence("s1", 0, 60, rule="down")], [("firing", 2, []), ("resolved", 4, [])]),
        # two silences: both named, sorted
        ("BBB..", [silence("s2", 0, 60, endpoint=EP), silence("s1", 1, 3, severity="HIGH")],
         [("firing", 2, ["s1", "s2"]), ("resolved", 4, [])]),
        # repeats inside a silence are marked too
        ("BBBBB..", [silence("s1", 0, 60, rule="errors")],
         [("firing", 2, ["s1"]), ("resolved", 6, [])]),
    ],
)
def test_silences(marks: str, silences: list[dict], expected: list[tuple]) -> None:
    got = [(change, m, by) for rule, change, m, by, _ in run(marks, silences=silences) if rule == "errors"]
    assert got == expected


def test_silenced_repeats_are_marked() -> None:
    got = run("BBBBBB..", repeat="2m", silences=[silence("s1", 0, 60, rule="errors")])
    assert [(c, m, by) for r, c, m, by, _ in got if r == "errors"] == [
        ("firing", 2, ["s1"]), ("repeat", 4, ["s1"]), ("repeat", 6, ["s1"]), ("resolved", 7, [])]


def tiered_run(marks: str, inhibition: dict) -> list[tuple]:
    """`src` (error rate > 30 %) inhibits the tiered `tiered` (CRITICAL > 90 %, HIGH > 30 %) per `inhibition`."""
    src = {"name": "src", "condition": "error_rate > 0.3", "for": "1m", "min_requests": 5, "severity": "HIGH"}
    tiered = {"name": "tiered", "min_requests": 5, "tiers": [{"severity": "CRITICAL", "condition": "error_rate > 0.9"},
                                                             {"severity": "HIGH", "condition": "error_rate > 0.3"}]}
    rules = RuleFile.model_validate({"rules": [src, tiered],
                                     "inhibit": [{"source": "src", "targets": ["tiered"], **inhibition}]})
    engine = RuleEngine(compile_rules(rules), rules, "hash")
    replay = Replay(lateness_ms=0)
    alerts = []
    for m, mark in enumerate(marks):
        alerts += engine.on_panes_closed(replay.feed("s", minute_records(m, mark)), replay.store)
    alerts += engine.on_panes_closed(replay.end("s"), replay.store)
    return [(a["rule"], a["change"], a["severity"], int(a["provenance"]["window_end"][14:16]), a["inhibited_by"])
            for a in alerts if a["labels"]["endpoint"] == EP]


@pytest.mark.parametrize(
    ("inhibition", "expected"),
    [
        # default: every severity of the target is muted while the source fires (its resolve is marked too,
        # and the notifier sends resolves to the channels that saw it fire whatever the mark)
        ({}, [("src", "firing", "HIGH", 1, []), ("tiered", "firing", "HIGH", 1, ["src"]),
              ("tiered", "escalated", "CRITICAL", 3, ["src"]), ("tiered", "deescalated", "HIGH", 5, ["src"]),
              ("src", "resolved", "HIGH", 7, []), ("tiered", "resolved", "HIGH", 7, [])]),
        # `severities: [HIGH]`: the escalation to CRITICAL is not muted (a lesser source never hides a page)
        ({"severities": ["HIGH"]},
         [("src", "firing", "HIGH", 1, []), ("tiered", "firing", "HIGH", 1, ["src"]),
          ("tiered", "escalated", "CRITICAL", 3, []), ("tiered", "deescalated", "HIGH", 5, ["src"]),
          ("src", "resolved", "HIGH", 7, []), ("tiered", "resolved", "HIGH", 7, [])]),
        # `equal` in another order is the same grouping
        ({"equal": ["endpoint", "service"], "severities": ["CRITICAL"]},
         [("src", "firing", "HIGH", 1, []), ("tiered", "firing", "HIGH", 1, []),
          ("tiered", "escalated", "CRITICAL", 3, ["src"]), ("tiered", "deescalated", "HIGH", 5, []),
          ("src", "resolved", "HIGH", 7, []), ("tiered", "resolved", "HIGH", 7, [])]),
    ],
)
def test_inhibition_severities(inhibition: dict, expected: list[tuple]) -> None:
    assert tiered_run("BBDDBB..", inhibition) == expected


@pytest.mark.parametrize(
    ("equal", "source_group", "message"),
    [
        ([], None, r"only \[service, endpoint\] \(same endpoint\) or \[service\] \(a service-wide source\)"),
        (["endpoint"], None, r"only \[service, endpoint\] \(same endpoint\) or \[service\]"),
        (["service"], None, r"equal: \[service\] needs a group_by: \[service\] source"),
        (["service", "endpoint"], ["service"], r"the source is a group_by: \[service\] rule, which has no endpoint"),
    ],
)
def test_inhibition_across_what_no_engine_holds_is_refused(equal: list[str], source_group: list[str] | None,
                                                           message: str) -> None:
    """A source on another endpoint lives in another partition's engine, a service-wide source has no endpoint:
    refused with where it is, never silently ignored."""
    rules = rule_file().model_dump(by_alias=True)
    if source_group is not None:
        rules["rules"][0]["group_by"] = source_group
    rules["inhibit"] = [{"source": "down", "targets": ["errors"], "equal": equal}]
    with pytest.raises(RuleError, match=r"inhibit\[0\]\.equal: " + message) as error:
        compile_rules(RuleFile.model_validate(rules))
    assert error.value.loc == ("inhibit", 0, "equal")


@pytest.mark.parametrize("group_by", [["endpoint"], ["service", "service"], ["endpoint", "service", "service"]])
def test_group_by_other_than_an_endpoint_or_a_service_is_refused(group_by: list[str]) -> None:
    rules = rule_file().model_dump(by_alias=True)
    rules["rules"][1]["group_by"] = group_by
    with pytest.raises(RuleError, match=r"rule 'errors', group_by: only \[service, endpoint\] \(per endpoint\) or "
                                        r"\[service\]") as error:
        compile_rules(RuleFile.model_validate(rules))
    assert error.value.loc == ("rules", 1, "group_by")


@pytest.mark.parametrize("field", ["only", "exclude"])
def test_a_service_wide_rule_cannot_match_an_endpoint(field: str) -> None:
    rules = rule_file().model_dump(by_alias=True)
    rules["rules"][1]["group_by"] = ["service"]
    rules["rules"][1][field] = [{"service": "svc"}, {"endpoint": "/a"}]
    with pytest.raises(RuleError, match=rf"rule 'errors', {field}: a group_by: \[service\] rule has no endpoint"):
        compile_rules(RuleFile.model_validate(rules))
