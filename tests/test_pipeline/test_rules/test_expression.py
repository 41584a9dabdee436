"""The rule expression language: table tests of parsing, arithmetic, comparisons and three-valued logic."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.rules.expression import ExpressionError, parse

METRICS = {"error_rate": 0.06, "success_rate": 0.4, "p95_ms": 1200.0, "total": 1500.0, "ratio_404": None,
           "d1_rows_read_today": 4_100_000.0, "daily_limit": 5_000_000.0, "zero": 0.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("error_rate > 0.05", True),
        ("error_rate > 5%", True),  # a percentage is a fraction
        ("error_rate > 6%", False),
        ("success_rate < 0.5", True),
        ("p95_ms >= 1200", True),
        ("p95_ms > 1000 and total >= 1000", True),
        ("p95_ms > 2000 or error_rate > 0.05", True),
        ("not (p95_ms > 2000)", True),
        ("d1_rows_read_today > 0.8 * daily_limit", True),
        ("d1_rows_read_today > 0.9 * daily_limit", False),
        ("(total - 500) / 2 == 500", True),
        ("-p95_ms < -1000", True),
        ("1e3 < p95_ms", True),
        # unknown (no data) propagates, except where the other side of and/or decides
        ("ratio_404 > 0.1", None),
        ("ratio_404 > 0.1 and total > 10_000", None),
        ("ratio_404 > 0.1 and total > 10000", False),
        ("ratio_404 > 0.1 or total > 1000", True),
        ("ratio_404 > 0.1 or total > 10000", None),
        ("not ratio_404 > 0.1", None),
        ("total / zero > 1", None),  # division by zero is unknown, not a crash
        ("missing_metric > 1", None),
    ],
)
def test_evaluate(text: str, expected: bool | None) -> None:
    if "10_000" in text:  # underscores are not part of the language
        with pytest.raises(ExpressionError):
            parse(text)
        return
    assert parse(text).evaluate(METRICS) == expected


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("error_rate >", "unexpected end", 13),
        ("error_rate > > 1", "unexpected '>'", 14),
        ("(error_rate > 1", r"missing '\)'", 1),
        ("error_rate > 1 extra", "unexpected 'extra'", 16),
        ("0 < error_rate < 1", "chained comparison", 16),
        ("__import__('os')", "unexpected character", 12),
        ("error_rate > 1; drop", "unexpected character", 15),
        ("a and", "unexpected end", 6),
        ("and > 1", "unexpected 'and'", 1),
    ],
)
def test_syntax_errors_say_what_and_where(text: str, message: str, column: int) -> None:
    with pytest.raises(ExpressionError, match=message) as caught:
        parse(text)
    assert f"column {column} " in str(caught.value)


def test_unknown_names_are_rejected_when_the_names_are_known() -> None:
    known = frozenset({"error_rate", "total"})
    assert parse("error_rate > 0.05 and total > 10", known).names == {"error_rate", "total"}
    with pytest.raises(ExpressionError, match="unknown name 'eror_rate'"):
        parse("eror_rate > 0.05", known)


def test_no_code_runs() -> None:
    """Attribute access, calls, subscripts and strings are not part of the language."""
    for text in ("error_rate.__class__", "open('x')", "error_rate[0]", "'a' == 'a'", "lambda: 1"):
        with pytest.raises(ExpressionError):
            parse(text)


# Generated expressions, as text, and a reference reading of the language's semantics to check them against.
NAMES = ("a", "b", "c")
ATOMS = st.one_of(st.sampled_from(NAMES), st.sampled_from(["0", "1", "2.5", "50%", "1e3"]))


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "<", "<=", ">", ">=", "==", "!=", "and", "or"]),
                  children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"(not {c})"), children.map(lambda c: f"(-{c})"))


EXPRESSIONS = st.recursive(ATOMS, _combine, max_leaves=12)
VALUES = st.one_of(st.none(), st.booleans(), st.floats(-5, 5, allow_nan=False), st.sampled_from([0.0, 1.0]))


def reference(node: Any, values: dict[str, Any]) -> Any:
    """The semantics in the module's docstring, read one node at a time."""
    kind = type(node).__name__
    if kind == "Number":
        return node.value
    if kind == "Name":
        return values.get(node.name)
    if kind == "Unary":
        operand = reference(node.operand, values)
        return None if operand is None else (not operand) if node.op == "not" else -float(operand)
    left, right = reference(node.left, values), reference(node.right, values)
    if node.op == "and":
        if left is False or right is False:
            return False
        return None if left is None or right is None else bool(left) and bool(right)
    if node.op == "or":
        if left is True or right is True:
            return True
        return None if left is None or right is None else bool(left) or bool(right)
    if left is None or right is None:
        return None
    a, b = float(left), float(right)
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: None if b == 0 else a / b,
            "<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b,
            "==": lambda: a == b, "!=": lambda: a != b}[node.op]()


@settings(max_examples=500, deadline=None)
@given(EXPRESSIONS, st.fixed_dictionaries({name: VALUES for name in NAMES}))
def test_evaluation_follows_the_semantics_on_generated_expressions(text: str, values: dict[str, Any]) -> None:
    expression = parse(text)
    got, want = expression.evaluate(values), reference(expression.root, values)
    assert type(got) is type(want)
    assert got == want or (math.isnan(got) and math.isnan(want))  # type: ignore[arg-type]  # NaN: inf - inf
