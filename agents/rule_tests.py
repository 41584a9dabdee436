"""Loading and running rule unit-test files (`tailwatch rules test PATH…`). A directory means every `*.yaml` in it.
Problems in a test file name its file and line, as rule files do."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from agents.rules_files import DEFAULT_RULES, LoadedRules, RuleFileError, load_rules
from agents.yaml_source import line_of, read_yaml, where
from pipeline.rules.rule_tests import CaseResult, check_case
from schemas.rule_tests import RuleTestFile

DEFAULT_TESTS = Path(__file__).parent / "defaults" / "rules-tests"


class RuleTestFileError(ValueError):
    pass


@dataclass
class FileResult:
    path: Path
    rules: LoadedRules
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(case.ok for case in self.cases)


def rule_test_paths(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for name in paths:
        path = Path(name)
        out.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    return out


def load_test_file(path: Path) -> tuple[RuleTestFile, Path]:
    """The validated test file and the rule file it tests."""
    data, root, _text = read_yaml(path, RuleTestFileError)
    if data is None:
        raise RuleTestFileError(f"{path}: the file is empty (a rule test file has `rules:` naming its rule file, "
                                f"and `tests:`)")
    if isinstance(data, dict) and isinstance(data.get("rules"), list) and "tests" not in data:
        raise RuleTestFileError(f"{path}: this is a rule file; `tailwatch rules test` expects a rule test file "
                                f"(`rules:` naming the rule file, and `tests:`); check a rule file with "
                                f"`tailwatch rules check {path}`")
    try:
        test_file = RuleTestFile.model_validate(data)
    except ValidationError as error:
        problems = [f"{path}:{line_of(root, tuple(item['loc'])) or '?'}: {where(tuple(item['loc']))}: "
                    f"{item['msg']}" for item in error.errors()]
        raise RuleTestFileError("\n".join(problems)) from None
    rules_path = DEFAULT_RULES if test_file.rules is None else (path.parent / test_file.rules)
    return test_file, rules_path


def run_test_file(path: Path) -> FileResult:
    """Raises RuleTestFileError or RuleFileError when the files themselves are wrong."""
    test_file, rules_path = load_test_file(path)
    rules = load_rules(rules_path)
    result = FileResult(path, rules)
    for case in test_file.tests:
        result.cases.append(check_case(case, test_file, rules.compiled, rules.rule_file, rules.sha256))
    return result


__all__ = ["DEFAULT_TESTS", "FileResult", "RuleFileError", "RuleTestFileError", "rule_test_paths", "run_test_file"]
