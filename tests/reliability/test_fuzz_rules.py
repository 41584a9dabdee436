"""Hostile rule files: only RuleFileError naming file:line, never another exception, never code execution."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.rules_files import DEFAULT_RULES, RuleFileError, load_rules
from tests.reliability.conftest import FUZZ_CASES
from tests.reliability.test_fuzz_reader import mutate

DEFAULT_TEXT = DEFAULT_RULES.read_bytes()
FUZZ = settings(max_examples=max(FUZZ_CASES // 10, 50), deadline=None,
                suppress_health_check=list(HealthCheck), database=None)
LOCATED = re.compile(r"^.+?:(\d+|\?)?:? ", re.MULTILINE)


def load_or_reject(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        load_rules(path)
    except RuleFileError as error:
        assert str(error).startswith(str(path)), str(error)
        assert LOCATED.match(str(error)), str(error)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 2),
                          st.sampled_from([b":", b"-", b" ", b"\n", b"!!python/object:os.system", b"&a", b"*a",
                                           b"[", b"{", b"'", b'"', b"0", b"-1", b"1e999", b"null", b"\t", b"\xff"])
                          | st.binary(min_size=1, max_size=8)), min_size=1, max_size=6))
def test_mutated_rule_files_only_raise_rule_file_error(tmp_path_factory: pytest.TempPathFactory,
                                                        edits: list[tuple[int, int, bytes]]) -> None:
    load_or_reject(tmp_path_factory.mktemp("rules") / "rules.yaml", mutate(DEFAULT_TEXT, edits))


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes_only_raise_rule_file_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    load_or_reject(tmp_path_factory.mktemp("rules") / "rules.yaml", data)


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['touch {marker}']",
                                 "!!python/object/new:os.system ['touch {marker}']",
                                 "!!python/name:os.system", "!!python/module:os"])
def test_python_tags_are_rejected_and_never_run(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "rules.yaml"
    path.write_text(f"version: 1\nrules:\n  - name: x\n    condition: {tag.format(marker=marker)}\n")
    with pytest.raises(RuleFileError, match=r"rules\.yaml:\d+: "):
        load_rules(path)
    assert not marker.exists()
