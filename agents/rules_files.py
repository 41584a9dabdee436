"""Loading rule files: YAML → validated `RuleFile` → compiled rules; every problem names its file and line."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipeline.rules.engine import CompiledRule, RuleError, compile_rules
from schemas.rules import RuleFile

DEFAULT_RULES = Path(__file__).parent / "defaults" / "rules.yaml"


class RuleFileError(ValueError):
    """`path:line: where: what` for each problem."""


@dataclass(frozen=True)
class LoadedRules:
    path: Path
    rule_file: RuleFile
    compiled: list[CompiledRule]
    sha256: str


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
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


def _where(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".") or "file"


def text_line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def load_rules(path: Path | str = DEFAULT_RULES) -> LoadedRules:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise RuleFileError(f"{path}: cannot read: {error.strerror}") from error
    except UnicodeDecodeError as error:
        bad_line = text_line_of(path.read_bytes(), error.start)
        raise RuleFileError(f"{path}:{bad_line}: not UTF-8 text: byte {error.start}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise RuleFileError(f"{path}{line}: not valid YAML: {getattr(error, 'problem', error)}") from error
    try:
        rule_file = RuleFile.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = tuple(item["loc"])
            problems.append(f"{path}:{_line_of(root, where) or '?'}: {_where(where)}: {item['msg']}")
        raise RuleFileError("\n".join(problems)) from None
    try:
        compiled = compile_rules(rule_file)
    except RuleError as error:
        index = next((i for i, rule in enumerate(rule_file.rules) if rule.name == error.rule), None)
        loc: tuple[Any, ...] = ("rules", index) if index is not None else ()
        if index is not None and error.field.split(".")[0].split("[")[0] in ("condition", "clear", "window"):
            loc += (error.field,)
        raise RuleFileError(f"{path}:{_line_of(root, loc) or '?'}: {error}") from None
    return LoadedRules(path, rule_file, compiled, hashlib.sha256(text.encode()).hexdigest())
