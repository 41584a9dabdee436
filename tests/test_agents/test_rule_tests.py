"""`tailwatch rules test`: every default rule's unit-test file passes (so CI runs them all), each covers the whole
lifecycle, and a wrong expectation fails with expected vs got."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agents.rule_tests import DEFAULT_TESTS, RuleTestFileError, rule_test_paths, run_test_file
from agents.rules_files import load_rules

TEST_FILES = rule_test_paths([str(DEFAULT_TESTS)])


def tailwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], capture_output=True, text=True, timeout=120)


def test_every_default_rule_has_a_test_file() -> None:
    rules = {rule.spec.name for rule in load_rules().compiled}
    assert {path.stem for path in TEST_FILES} == rules


@pytest.mark.parametrize("path", TEST_FILES, ids=[path.stem for path in TEST_FILES])
def test_default_rule_tests_pass_and_cover_the_lifecycle(path: Path) -> None:
    result = run_test_file(path)
    failures = [f"{case.name}: " + "\n".join(case.failures) for case in result.cases if not case.ok]
    assert failures == []
    changes = {alert["change"] for case in result.cases for alert in case.alerts if alert["rule"] == path.stem}
    assert {"firing", "resolved"} <= changes, "fires and resolves"
    spec = yaml.safe_load(path.read_text())
    assert any(case["expect"] == [] for case in spec["tests"]), "a near miss that must not fire"
    assert all(case.get("rules") for case in spec["tests"]), "each case names the rules it checks"


def wrong(tmp_path: Path, source: str, old: str, new: str) -> Path:
    text = (DEFAULT_TESTS / source).read_text()
    assert old in text
    path = tmp_path / source
    rules = f"rules: {DEFAULT_TESTS.parent}/rules.yaml"
    path.write_text(text.replace(old, new, 1).replace("rules: ../rules.yaml", rules))
    return path


@pytest.mark.parametrize(("old", "new", "message"), [
    ("starts_at: 15m,\n", "starts_at: 14m,\n", "differs in starts_at"),
    ("severity: CRITICAL, active_since: 5m", "severity: HIGH, active_since: 5m", "differs in severity"),
    ("value: 0.090909", "value: 0.1", "differs in value"),
    ("labels: {service: factory-api, endpoint: /api/x}", "labels: {endpoint: /api/y}", "differs in labels"),
    ("change: resolved, active_since: 5m, starts_at: 15m, ends_at: 16m",
     "change: resolved, active_since: 5m, starts_at: 15m, ends_at: 17m", "differs in ends_at"),
    ("      - {rule: factory-high-error-rate, change: resolved, active_since: 5m, starts_at: 15m, ends_at: 16m}\n", "",
     "expected 1 transitions, got 2"),
    ("delay: 70s", "delay: 5s", "expected 0 transitions, got 2"),  # the near miss's late errors arrive in time
])
def test_a_wrong_expectation_fails_with_expected_and_got(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = wrong(tmp_path, "factory-high-error-rate.yaml", old, new)
    cases = run_test_file(path).cases
    failed = [case for case in cases if not case.ok]
    assert len(failed) == 1
    text = "\n".join(failed[0].failures)
    assert message in text and "expected:" in text and "got:" in text
    result = tailwatch("rules", "test", str(path))
    assert result.returncode == 1
    assert f"FAIL  {path}: {failed[0].name}" in result.stdout and message in result.stdout
    assert f"{len(cases) - 1} passed, 1 failed" in result.stdout


def test_rules_test_cli_passes_on_the_defaults_and_reports_bad_files(tmp_path: Path) -> None:
    result = tailwatch("rules", "test")
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"0 failed, 0 files with errors ({len(TEST_FILES)} files" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("tests:\n  - name: x\n    input:\n      - series: {endpoint: /a, every: 1s, count: 3, colour: red}\n"
                   "    expect: []\n")
    with pytest.raises(RuleTestFileError, match=r"bad.yaml:4: tests\[0\].input\[0\].series.colour: Extra inputs"):
        run_test_file(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("tests:\n  - name: x\n    rules: [no-such-rule]\n    input:\n"
                       "      - series: {endpoint: /a, every: 1s, count: 3}\n    expect: []\n")
    result = tailwatch("rules", "test", str(bad), str(unknown))
    assert result.returncode == 2  # an invalid test file is an input error; it outranks a failing case
    assert "ERROR" in result.stderr and "no such rule in the rule file: no-such-rule" in result.stdout
    assert tailwatch("rules", "test", str(unknown)).returncode == 1  # a failing case alone: the check failed
