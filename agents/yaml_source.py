"""YAML files whose problems name their line: the one mechanism the rule files and tailwatch.yaml share.

`read_yaml` gives the parsed data and the composed node tree; `line_of(root, loc)` maps a pydantic error location
to the line of that node (or of its nearest parent that exists).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import yaml


class YamlSource(NamedTuple):
    data: Any
    root: yaml.Node | None  # the composed node tree, for `line_of`
    text: str


def read_yaml(path: Path, error: type[Exception]) -> YamlSource:
    """The data, node tree and text of the YAML file at `path`; `error("path[:line]: reason")`, on one line, when
    it cannot be read, is not UTF-8 or is not YAML. Every YAML file tailwatch reads (rules, channels,
    tailwatch.yaml) comes through here."""
    try:
        raw = path.read_bytes()
    except OSError as problem:
        raise error(f"{path}: cannot read: {problem.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as problem:
        line = raw[:problem.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not UTF-8 text (byte {raw[problem.start]:#04x})") from None
    try:
        return YamlSource(yaml.safe_load(text), yaml.compose(text, Loader=yaml.SafeLoader), text)
    except yaml.YAMLError as problem:
        raise error(f"{path}{yaml_line(problem, text)}: not valid YAML: {yaml_problem(problem)}") from None
    except RecursionError:
        raise error(f"{path}:1: not valid YAML: nested too deeply") from None


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc` (or of its nearest parent that exists)."""
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def where(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".") or "file"


def yaml_line(error: yaml.YAMLError, text: str) -> str:
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        return f":{mark.line + 1}"
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML does not allow: no mark, a position
        return f":{text[:error.position].count(chr(10)) + 1}"
    return ""


def printable(text: str) -> str:
    """`text` with its control characters shown as escapes (one line, whatever a file held)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def yaml_problem(error: yaml.YAMLError) -> str:
    """One line: what is wrong (a reader error: its reason and the character)."""
    if isinstance(error, yaml.reader.ReaderError):
        character = error.character if isinstance(error.character, int) else None
        problem = f"{error.reason} (#x{character:04x})" if character is not None else str(error.reason)
    else:
        problem = str(getattr(error, "problem", None) or type(error).__name__)
    return printable(" ".join(problem.split()))
