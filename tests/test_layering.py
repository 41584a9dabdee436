"""The layering and purity rules, enforced: import-linter's contracts, and no clock or file I/O in the core."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE = ("schemas", "pipeline")
CLOCK_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today")}
IO_CALLS = {"open", "print", "input"}


def test_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is not installed"
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("package", PURE)
def test_core_reads_no_clock_and_does_no_io(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in IO_CALLS:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {func.id}()")
            if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                    and (func.value.id, func.attr) in CLOCK_CALLS):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {func.value.id}.{func.attr}()")
    assert offenders == []
