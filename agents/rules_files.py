"""Loading rule files: YAML → validated `RuleFile` → compiled rules; every problem names its file and line."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agents.yaml_source import line_of, read_yaml, where
from pipeline.rules.compiled import CompiledRule, RuleError, compile_rules
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


def load_rules(path: Path | str = DEFAULT_RULES) -> LoadedRules:
    path = Path(path)
    data, root, text = read_yaml(path, RuleFileError)
    if data is None:
        raise RuleFileError(f"{path}: the file is empty (a rule file has `version: 1` and a list of `rules:`)")
    if isinstance(data, dict) and "tests" in data and not isinstance(data.get("rules"), list):
        raise RuleFileError(f"{path}: this is a rule test file, not a rule file: run it with `tailwatch rules test "
                            f"{path}`")
    try:
        rule_file = RuleFile.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            at = tuple(item["loc"])
            problems.append(f"{path}:{line_of(root, at) or '?'}: {where(at)}: {item['msg']}")
        raise RuleFileError("\n".join(problems)) from None
    try:
        compiled = compile_rules(rule_file)
    except RuleError as error:
        index = next((i for i, rule in enumerate(rule_file.rules) if rule.name == error.rule), None)
        loc: tuple[Any, ...] = ("rules", index) if index is not None else ()
        if index is not None and error.field.split(".")[0].split("[")[0] in ("condition", "clear", "window"):
            loc += (error.field,)
        if error.loc is not None:
            loc = error.loc
        raise RuleFileError(f"{path}:{line_of(root, loc) or '?'}: {error}") from None
    return LoadedRules(path, rule_file, compiled, hashlib.sha256(text.encode()).hexdigest())
