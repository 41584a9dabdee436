"""Silence matchers (Alertmanager-style) and the silence record schema."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from pipeline.replay import Replay
from pipeline.rules.compiled import compile_rules
from pipeline.rules.engine import RuleEngine
from pipeline.rules.silences import MatcherError, SilenceSet, parse_matcher
from schemas.rules import RuleFile
from schemas.silences import Silence
from tests.test_pipeline.records import BASE_MS, record

LABELS = {"rule": "factory-404-spike", "service": "gateway", "endpoint": "/api/x/:id", "severity": "MEDIUM"}
T = 1_767_700_800_000  # 2026-01-06T12:00:00Z


def silence(*matchers: str, starts: str = "2026-01-06T12:00:00Z", ends: str = "2026-01-06T14:00:00Z") -> dict:
    return {"id": "s", "matchers": [parse_matcher(m) for m in matchers], "starts_at": starts, "ends_at": ends}


@pytest.mark.parametrize(("matchers", "hit"), [
    (["rule=factory-404-spike"], True),
    (["rule=factory-404-spike", "endpoint=/api/x/:id"], True),
    (["rule=factory-404-spike", "endpoint=/api/y"], False),  # all must hold
    (["endpoint=~/api/.*"], True),
    (["endpoint=~/api"], False),  # regexes are anchored: the whole value must match
    (["endpoint!~/health.*", "severity!=CRITICAL"], True),
    (["severity=~HIGH|CRITICAL"], False),
    (["team="], True),  # a label the alert does not have is the empty string
    (["team!="], False),
])
def test_matchers(matchers: list[str], hit: bool) -> None:
    assert (SilenceSet([silence(*matchers)]).matching(LABELS, T) == ["s"]) is hit


def test_the_time_range_is_half_open_in_event_time() -> None:
    silences = SilenceSet([silence("rule=factory-404-spike")])
    assert silences.matching(LABELS, T - 1) == []
    assert silences.matching(LABELS, T) == ["s"]
    assert silences.matching(LABELS, T + 2 * 3_600_000 - 1) == ["s"]
    assert silences.matching(LABELS, T + 2 * 3_600_000) == []
    silences.reset([])
    assert silences.matching(LABELS, T) == [] and len(silences) == 0


def test_parse_matcher_and_its_errors() -> None:
    assert parse_matcher("endpoint=~/api/a=b") == {"name": "endpoint", "op": "=~", "value": "/api/a=b"}
    assert parse_matcher("a!=b") == {"name": "a", "op": "!=", "value": "b"}
    with pytest.raises(MatcherError, match="not a matcher"):
        parse_matcher("rule")
    with pytest.raises(MatcherError, match="not a label name"):
        parse_matcher("my-label=x")
    with pytest.raises(MatcherError, match="bad regex"):
        parse_matcher("endpoint=~(")


def test_the_silence_schema_rejects_bad_records() -> None:
    good = {**silence("rule=x"), "created_by": "ops", "comment": "c", "created_at": "2026-01-06T11:00:00Z"}
    Silence.model_validate(good)
    with pytest.raises(ValidationError, match="ends_at is before starts_at"):
        Silence.model_validate({**good, "ends_at": "2026-01-06T11:00:00Z"})
    with pytest.raises(ValidationError, match="bad regex"):
        Silence.model_validate({**good, "matchers": [{"name": "a", "op": "=~", "value": "("}]})
    with pytest.raises(ValidationError, match="time zone"):
        Silence.model_validate({**good, "starts_at": "2026-01-06T12:00:00"})
    with pytest.raises(ValidationError):
        Silence.model_validate({**good, "matchers": []})


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=/api)/api/.*", "(?<!x)/api", "a++", "(?P<n>a)(?P=n)"])
def test_patterns_re2_does_not_accept_are_refused_with_its_reason(pattern: str) -> None:
    with pytest.raises(MatcherError, match=r"bad regex .*RE2") as error:
        parse_matcher(f"endpoint=~{pattern}")
    assert "Traceback" not in str(error.value)
    good = {**silence("rule=x"), "created_by": "ops", "comment": "c", "created_at": "2026-01-06T11:00:00Z"}
    with pytest.raises(ValidationError, match="bad regex"):
        Silence.model_validate({**good, "matchers": [{"name": "endpoint", "op": "!~", "value": pattern}]})


def test_a_record_re2_does_not_accept_costs_only_itself() -> None:
    bad = {**silence("rule=factory-404-spike"), "id": "bad",
           "matchers": [{"name": "endpoint", "op": "=~", "value": r"(/api)\1"}]}
    silences = SilenceSet([bad, silence("rule=factory-404-spike")])
    assert silences.matching(LABELS, T) == ["s"] and len(silences) == 1
    assert list(silences.rejected) == ["bad"] and "invalid escape sequence" in silences.rejected["bad"]
    assert silences.put(bad) is not None and len(silences) == 1  # put skips it too, with its reason
    silences.remove("bad")
    assert silences.rejected == {}


# Python's backtracking `re` takes seconds on these (4.4 s for `/api/(a+)+` against a 27-character path, doubling
# with every character); RE2 is linear in the text whatever the pattern.
CATASTROPHIC = ["(a+)+$", "/api/(a+)+", "(a|a)*b", "(a*)*(b|c)", "(.*a){12}"]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_matching_takes_linear_time_on_a_10000_character_endpoint(pattern: str) -> None:
    # never matches: the worst case for a backtracking engine (`re` takes ~0.2 s on 22 characters of it here)
    endpoint = ("/api/" if pattern.startswith("/api/") else "") + "a" * 10_000 + "!"
    silences = SilenceSet([silence(f"endpoint=~{pattern}"), {**silence(f"endpoint!~{pattern}"), "id": "not"}])
    labels = {**LABELS, "endpoint": endpoint}
    started = time.perf_counter()
    assert silences.matching(labels, T) == ["not"]
    elapsed = time.perf_counter() - started
    assert elapsed < 0.05, f"{pattern}: {elapsed * 1000:.1f} ms"


def test_anchoring_and_unicode_match_as_alertmanager() -> None:
    assert parse_matcher("endpoint=~/api/(a+)+")["value"] == "/api/(a+)+"
    hit = SilenceSet([silence("endpoint=~/api/(a+)+")])
    assert hit.matching({**LABELS, "endpoint": "/api/aaa"}, T) == ["s"]
    assert hit.matching({**LABELS, "endpoint": "/api/aaa/x"}, T) == []  # anchored at the end
    assert hit.matching({**LABELS, "endpoint": "x/api/aaa"}, T) == []  # and at the start
    assert SilenceSet([silence("endpoint=~/caf.")]).matching({**LABELS, "endpoint": "/café"}, T) == ["s"]
    # a lone surrogate cannot come from JSON logs, but must not break matching either
    assert SilenceSet([silence("endpoint=~/x.*")]).matching({**LABELS, "endpoint": "/x\ud800"}, T) == ["s"]


def test_the_rule_engine_does_not_stall_on_a_hostile_endpoint() -> None:
    """The worker's path: a rule fires on a 10,000-character endpoint while a catastrophic-under-`re` silence
    is checked against it (and one that matches it)."""
    rules = RuleFile.model_validate({"rules": [{"name": "errors", "condition": "error_rate > 0.5",
                                                "severity": "HIGH"}]})
    hostile = "/api/" + "a" * 10_000 + "!"
    silences = SilenceSet([silence("endpoint=~/api/(a+)+"), {**silence("endpoint=~/api/a+!"), "id": "hit"}])
    engine = RuleEngine(compile_rules(rules), rules, "hash", silences)
    replay = Replay(lateness_ms=0)
    records = [record(BASE_MS + i * 1000, hostile, 500) for i in range(30)]
    started = time.perf_counter()
    alerts = engine.on_panes_closed(replay.feed("s", records), replay.store)
    alerts += engine.on_panes_closed(replay.end("s"), replay.store)
    elapsed = time.perf_counter() - started
    assert [(a["change"], a["silenced_by"]) for a in alerts] == [("firing", ["hit"])]
    assert elapsed < 0.5, f"{elapsed * 1000:.0f} ms"
