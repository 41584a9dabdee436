"""`tailwatch probe` options: the default config is the spec's check; flags override it; bad input is clear."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agents.cli import build_parser
from agents.commands.probe_cmd import ProbeConfigError, load_plan


def test_the_default_plan_is_the_specs_external_monitoring() -> None:
    plan = load_plan(build_parser().parse_args(["probe"]))
    assert [(t.url, t.expect_status) for t in plan.targets] == [("https://gateway.erlvinc.com/health", 200)]
    assert (plan.interval_s, plan.timeout_s) == (60.0, 10.0)
    rule = plan.rule
    assert (rule.name, rule.failures, rule.severity, rule.channels) == (
        "factory-uptime-probe", 2, "CRITICAL", ["pagerduty", "slack-critical"])


def test_flags_override_the_config() -> None:
    args = build_parser().parse_args(["probe", "--url", "http://127.0.0.1:1/a", "http://127.0.0.1:2/b",
                                      "--interval", "5", "--timeout", "0.5", "--failures", "3"])
    plan = load_plan(args)
    assert [t.url for t in plan.targets] == ["http://127.0.0.1:1/a", "http://127.0.0.1:2/b"]
    assert (plan.interval_s, plan.timeout_s, plan.rule.failures) == (5.0, 0.5, 3)
    assert plan.rule.name == "factory-uptime-probe"


@pytest.mark.parametrize(("argv", "message"), [
    (["--failures", "0"], "greater than or equal to 1"),
    (["--url", "gateway/health"], "String should match pattern"),
    (["--interval", "0"], "must be positive"),
])
def test_bad_flags_are_rejected(argv: list[str], message: str) -> None:
    with pytest.raises(ProbeConfigError, match=message):
        load_plan(build_parser().parse_args(["probe", *argv]))


def test_a_bad_probe_config_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "probes.yaml"
    bad.write_text("version: 1\ninterval: soon\ntargets: [{url: http://127.0.0.1:1/health}]\n")
    result = subprocess.run([sys.executable, "-m", "agents.cli", "probe", "--config", str(bad), "--count", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert str(bad) in result.stderr and "not a duration: 'soon'" in result.stderr
