"""Hostile rule files: `load_rules` on generated and mutated YAML only ever raises `RuleFileError` naming the file
(and the line where there is one); YAML python tags are rejected and never run; the expression language never
evaluates code. Cases per property: `TAILWATCH_FUZZ_CASES` (default 300)."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.rules_files import DEFAULT_RULES, RuleFileError, load_rules
from pipeline.rules.expression import ExpressionError, parse

CASES = int(os.environ.get("TAILWATCH_FUZZ_CASES", "300"))
FUZZ = settings(max_examples=CASES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
DEFAULT_TEXT = DEFAULT_RULES.read_text()
DEFAULT_LINES = DEFAULT_TEXT.splitlines(keepends=True)
TAGS = ("!!python/object/apply:os.system ['touch {canary}']", "!!python/object/apply:builtins.exec "
        "[\"open('{canary}', 'w')\"]", "!!python/object/new:os.system ['touch {canary}']",
        "!!python/name:os.system", "!!python/module:os", "!!binary aGVsbG8=", "!!set {{a, b}}", "&a [*a]",
        "!!python/object:__main__.X {{}}", "!<tag:yaml.org,2002:python/object/apply:os.system> ['touch {canary}']")


def load_text(tmp_path: Path, data: str | bytes) -> str | None:
    """Load `data` as a rule file; None when it loads, else the error message (any other exception fails)."""
    path = tmp_path / "rules.yaml"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    try:
        load_rules(path)
    except RuleFileError as error:
        message = str(error)
        for problem in message.splitlines():
            assert re.match(rf"{re.escape(str(path))}(:(\d+|\?))?: \S", problem), message
        return message
    return None


@st.composite
def mutated_rules(draw: st.DrawFn, canary: str = "/nonexistent") -> str:
    lines = list(DEFAULT_LINES)
    for _ in range(draw(st.integers(1, 5))):
        if not lines:
            break
        op = draw(st.sampled_from(("delete", "duplicate", "tag", "flip", "indent", "value", "truncate")))
        at = draw(st.integers(0, len(lines) - 1))
        line = lines[at]
        if op == "delete":
            del lines[at]
        elif op == "duplicate":
            lines.insert(at, line)
        elif op == "tag" and ":" in line:
            key = line.split(":", 1)[0]
            lines[at] = f"{key}: {draw(st.sampled_from(TAGS)).format(canary=canary)}\n"
        elif op == "flip" and line:
            i = draw(st.integers(0, len(line) - 1))
            lines[at] = line[:i] + draw(st.characters(codec="utf-8")) + line[i + 1:]
        elif op == "indent":
            lines[at] = " " * draw(st.integers(0, 3)) + line.lstrip(" ")
        elif op == "value" and ":" in line:
            key = line.split(":", 1)[0]
            value = draw(st.sampled_from(("", "~", "-1", "1e999", "nan", "[]", "{}", "'x'", "\"(\"", "yes",
                                          "__import__('os')", "99999999999999999999999", "0s", "-5m", "1.5")))
            lines[at] = f"{key}: {value}\n"
        elif op == "truncate":
            del lines[at:]
            if lines:
                lines[-1] = lines[-1][: draw(st.integers(0, len(lines[-1])))]
    return "".join(lines)


def test_the_default_rules_load(tmp_path: Path) -> None:
    assert load_text(tmp_path, DEFAULT_TEXT) is None


@FUZZ
@given(mutated_rules())
def test_mutated_rule_files_raise_only_rule_file_error(tmp_path: Path, text: str) -> None:
    load_text(tmp_path, text)


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text_raises_only_rule_file_error(tmp_path: Path, text: str) -> None:
    load_text(tmp_path, text)


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_rule_file_error(tmp_path: Path, data: bytes) -> None:
    load_text(tmp_path, data)


@settings(FUZZ, max_examples=min(CASES, 40))
@given(st.integers(1, 3000), st.sampled_from(("[", "{a: ", "- ")))
def test_deep_nesting_raises_only_rule_file_error(tmp_path: Path, depth: int, opener: str) -> None:
    load_text(tmp_path, "version: 1\nrules: " + opener * depth + "\n")


@pytest.mark.parametrize("tag", [t for t in TAGS if "{canary}" in t])
@pytest.mark.parametrize("where", ["top", "params", "rule"])
def test_python_tags_are_rejected_and_never_run(tmp_path: Path, tag: str, where: str) -> None:
    canary = tmp_path / "executed"
    value = tag.format(canary=canary)
    if where == "top":
        text = f"{value}\n"
    elif where == "params":
        text = DEFAULT_TEXT.replace("d1_daily_read_limit: 5000000", f"d1_daily_read_limit: {value}")
        assert text != DEFAULT_TEXT
    else:
        text = DEFAULT_TEXT.replace("rules:\n", f"rules:\n  - name: {value}\n", 1)
    message = load_text(tmp_path, text)
    assert message is not None and "not valid YAML" in message
    assert not canary.exists(), "a YAML tag executed code"


@FUZZ
@given(st.sampled_from(TAGS), mutated_rules())
def test_tags_in_mutated_files_never_run(tmp_path: Path, tag: str, text: str) -> None:
    canary = tmp_path / "ran"
    lines = text.splitlines(keepends=True) or [""]
    lines.insert(len(lines) // 2, f"x: {tag.format(canary=canary)}\n")
    load_text(tmp_path, "".join(lines))
    assert not canary.exists()


CODE = ["__import__('os')", "__import__('os').system('true')", "os.system", "error_rate.__class__",
        "(lambda: 1)()", "lambda x: x", "open('/etc/passwd')", "exec('1')", "eval('1')", "p95_ms.real",
        "[x for x in ()]", "error_rate if 1 else 0", "error_rate[0]", "{}", "'a'", "globals()", "p95_ms; 1",
        "1 ** 2", "error_rate @ 1", "`id`", "$(id)", "error_rate | 1", "f'{1}'"]
NAMES = frozenset(("error_rate", "p95_ms", "requests"))


@pytest.mark.parametrize("text", CODE)
def test_expressions_never_evaluate_code(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse(text, NAMES)


@pytest.mark.parametrize("text", CODE)
def test_code_in_a_rule_condition_is_rejected_with_its_line(tmp_path: Path, text: str) -> None:
    original = re.search(r"^(\s*condition: )(.*)$", DEFAULT_TEXT, re.M)
    assert original is not None
    line = DEFAULT_TEXT[:original.start()].count("\n") + 1
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    mutated = DEFAULT_TEXT[:original.start(2)] + f'"{escaped}"' + DEFAULT_TEXT[original.end(2):]
    message = load_text(tmp_path, mutated)
    assert message is not None and f":{line}:" in message, message


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("()+-*/<>=!% .eE_1ax'\"[]{}:;,|&^~@`$\\")) | st.characters(),
               max_size=60) | st.sampled_from(CODE))
def test_arbitrary_expressions_raise_only_expression_error(text: str) -> None:
    try:
        expression = parse(text, NAMES)
    except ExpressionError:
        return
    value = expression.evaluate({"error_rate": 0.5, "p95_ms": 100.0, "requests": 10.0})
    assert value is None or isinstance(value, float | bool | int)
    assert expression.names <= NAMES


@settings(FUZZ, max_examples=min(CASES, 100))
@given(st.integers(1, 5000))
def test_deeply_nested_expressions_raise_only_expression_error(depth: int) -> None:
    for text in ("(" * depth + "1" + ")" * depth, "-" * depth + "1", "not " * depth + "1"):
        with contextlib.suppress(ExpressionError):
            parse(text, NAMES).evaluate({})
