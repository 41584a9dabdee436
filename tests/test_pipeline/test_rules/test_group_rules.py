"""The engine works out each group's rules and parameters once, not per pane: the same alerts, a bounded cache."""

from __future__ import annotations

import orjson
import pytest

from agents.rules_files import load_rules
from pipeline.replay import Replay
from pipeline.rules import engine as engine_module
from pipeline.rules.engine import RuleEngine
from tests.test_pipeline.records import BASE_MS, record

MINUTE = 60_000
ENDPOINTS = [f"/api/public/factory/e{i}" for i in range(12)] + ["/api/public/factory/templates"]


def alerts(kept: int, monkeypatch: pytest.MonkeyPatch) -> tuple[list[bytes], int]:
    """20 minutes of 13 endpoints failing half their requests from minute 5 (the templates list gets the spike
    override), through the default rules with at most `kept` groups' rules held."""
    monkeypatch.setattr(engine_module, "GROUP_RULES_KEPT", kept)
    rules = load_rules()
    engine = RuleEngine(rules.compiled, rules.rule_file, rules.sha256)
    replay = Replay(engine=engine)
    out = []
    held = 0
    for minute in range(20):
        batch = [record(BASE_MS + minute * MINUTE + i * 1_000, endpoint, 500 if minute >= 5 and i % 2 else 200)
                 for i in range(40) for endpoint in ENDPOINTS]
        out += [orjson.dumps(a) for a in replay.step("s", batch).alerts]
        held = max(held, len(engine._group_rules))
    out += [orjson.dumps(a) for a in replay.step_end("s").alerts]
    return out, held


def test_the_cache_is_bounded_and_changes_no_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    unbounded, held = alerts(10_000, monkeypatch)
    assert held == len(ENDPOINTS) and unbounded
    bounded, held = alerts(5, monkeypatch)
    assert held <= 5
    assert bounded == unbounded
