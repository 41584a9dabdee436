"""A small, safe expression language for rule conditions over window metrics — parsed, never `eval`ed.

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | atom
    atom       := NUMBER ["%"] | NAME | "(" expr ")"

`95%` is 0.95. Names are window metrics (`error_rate`, `p95_ms`, …) or the rule's own parameters
(`daily_limit`). A metric with no value (no responses in the window) makes what uses it unknown (`None`), and
`and`/`or`/`not` follow three-valued logic: a condition that is unknown is neither breached nor clear — the alert
state holds. Division by zero is unknown too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Value = float | bool | None

_TOKEN = re.compile(r"\s*(?:(?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<op><=|>=|==|!=|[<>+\-*/()%]))")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}
_KEYWORDS = frozenset(("and", "or", "not"))


class ExpressionError(ValueError):
    def __init__(self, message: str, text: str, position: int) -> None:
        super().__init__(f"{message} at column {position + 1} of {text!r}")
        self.position = position


@dataclass(frozen=True, slots=True)
class Number:
    value: float


@dataclass(frozen=True, slots=True)
class Name:
    name: str


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" or "not"
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node


Node = Number | Name | Unary | Binary


Evaluator = Callable[[Mapping[str, Value]], Value]


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed condition: `evaluate(values)` gives True (breached), False (clear) or None (unknown). The tree is
    turned into nested closures once (`_compiled`), so an evaluation is a few calls, not a walk over node types."""

    text: str
    root: Node
    names: frozenset[str]
    evaluate: Evaluator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "evaluate", _compiled(self.root))


def parse(text: str, known_names: frozenset[str] | None = None) -> Expression:
    """Parse `text`; with `known_names`, any other name is an error."""
    tokens = _tokenize(text)
    parser = _Parser(text, tokens)
    try:
        root = parser.expression()
    except RecursionError:
        raise ExpressionError("nested too deeply", text, 0) from None
    if parser.index != len(tokens):
        raise ExpressionError(f"unexpected {tokens[parser.index][1]!r}", text, tokens[parser.index][2])
    names = frozenset(_names(root))
    if known_names is not None:
        unknown = sorted(names - known_names)
        if unknown:
            raise ExpressionError(f"unknown name {unknown[0]!r} (known: {', '.join(sorted(known_names))})", text,
                                  text.find(unknown[0]))
    return Expression(text, root, names)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            bad = len(text) - len(text[position:].lstrip())
            raise ExpressionError(f"unexpected character {text[bad]!r}", text, bad)
        kind = match.lastgroup or ""
        value = match.group(kind)
        tokens.append((kind, value, match.start(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, str, int]]) -> None:
        self.text = text
        self.tokens = tokens
        self.index = 0

    def _peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str, int]:
        if self.index >= len(self.tokens):
            raise ExpressionError("unexpected end", self.text, len(self.text))
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expression(self) -> Node:
        node = self._and()
        while self._peek() == "or":
            self._take()
            node = Binary("or", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._not()
        while self._peek() == "and":
            self._take()
            node = Binary("and", node, self._not())
        return node

    def _not(self) -> Node:
        if self._peek() == "not":
            self._take()
            return Unary("not", self._not())
        return self._comparison()

    def _comparison(self) -> Node:
        node = self._sum()
        if self._peek() in _COMPARE:
            op = self._take()[1]
            node = Binary(op, node, self._sum())
            if self._peek() in _COMPARE:
                raise ExpressionError("chained comparison: use `and`", self.text, self.tokens[self.index][2])
        return node

    def _sum(self) -> Node:
        node = self._product()
        while self._peek() in ("+", "-"):
            op = self._take()[1]
            node = Binary(op, node, self._product())
        return node

    def _product(self) -> Node:
        node = self._unary()
        while self._peek() in ("*", "/"):
            op = self._take()[1]
            node = Binary(op, node, self._unary())
        return node

    def _unary(self) -> Node:
        if self._peek() == "-":
            self._take()
            return Unary("-", self._unary())
        return self._atom()

    def _atom(self) -> Node:
        kind, value, position = self._take()
        if kind == "number":
            number = float(value)
            if self._peek() == "%":
                self._take()
                number /= 100
            return Number(number)
        if kind == "name":
            if value in _KEYWORDS:
                raise ExpressionError(f"unexpected {value!r}", self.text, position)
            return Name(value)
        if value == "(":
            node = self.expression()
            if self._peek() != ")":
                raise ExpressionError("missing ')'", self.text, position)
            self._take()
            return node
        raise ExpressionError(f"unexpected {value!r}", self.text, position)


def _names(node: Node) -> list[str]:
    if isinstance(node, Name):
        return [node.name]
    if isinstance(node, Unary):
        return _names(node.operand)
    if isinstance(node, Binary):
        return _names(node.left) + _names(node.right)
    return []


_ARITHMETIC: dict[str, Callable[[float, float], float | None]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: None if b == 0 else a / b,
}


def _compiled(node: Node) -> Evaluator:
    """`node` as a function of the values. Unknown (None) propagates through arithmetic and comparisons; `and`,
    `or` and `not` follow Kleene logic: `False and unknown` is False, `True or unknown` is True."""
    if isinstance(node, Number):
        constant = node.value
        return lambda values: constant
    if isinstance(node, Name):
        name = node.name
        return lambda values: values.get(name)
    if isinstance(node, Unary):
        return _unary(node.op, _compiled(node.operand))
    left, right = _compiled(node.left), _compiled(node.right)
    if node.op in ("and", "or"):
        return _junction(left, right, decisive=node.op == "or")
    operation = _COMPARE.get(node.op) or _ARITHMETIC[node.op]

    def binary(values: Mapping[str, Value]) -> Value:
        a = left(values)
        if a is None:
            return None
        b = right(values)
        return None if b is None else operation(float(a), float(b))
    return binary


def _unary(op: str, operand: Evaluator) -> Evaluator:
    if op == "not":
        def negation(values: Mapping[str, Value]) -> Value:
            value = operand(values)
            return None if value is None else not value
        return negation

    def minus(values: Mapping[str, Value]) -> Value:
        value = operand(values)
        return None if value is None else -float(value)
    return minus


def _junction(left: Evaluator, right: Evaluator, decisive: bool) -> Evaluator:
    """`and` (`decisive` False) or `or` (True): a side that is the decisive value decides, even with the other
    unknown; else unknown when a side is, else the Boolean result."""
    def junction(values: Mapping[str, Value]) -> Value:
        a = left(values)
        if a is decisive:
            return decisive
        b = right(values)
        if b is decisive:
            return decisive
        if a is None or b is None:
            return None
        return (bool(a) or bool(b)) if decisive else (bool(a) and bool(b))
    return junction
