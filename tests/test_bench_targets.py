"""The benchmarks' contract with scripts (bench/_targets.py): the last line states ratio, target and verdict, and
the exit code says whether every target was met; `bench live --profile` finds py-spy in its own environment or
says how to install it; `bench peers` says how to install bytewax. (The benchmarks themselves run on demand.)"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from bench import live, peers
from bench.__main__ import benchmark_names
from bench._targets import verdict


def last_line(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out.splitlines()[-1]


@pytest.mark.parametrize(("ratio", "target", "at_most", "also_met", "code", "line"), [
    (2.5, 2.0, False, True, 0, "ratio=2.500 target>=2.0 met"),
    (1.4049, 2.0, False, True, 1, "ratio=1.405 target>=2.0 missed"),
    (0.2, 0.25, True, True, 0, "ratio=0.200 target<=0.25 met"),
    (0.3, 0.25, True, True, 1, "ratio=0.300 target<=0.25 missed"),
    (1.2, 1.0, False, False, 1, "ratio=1.200 target>=1.0 met"),  # the ratio met, another target missed
])
def test_the_last_line_and_the_exit_code(capsys: pytest.CaptureFixture[str], ratio: float, target: float,
                                         at_most: bool, also_met: bool, code: int, line: str) -> None:
    assert verdict(ratio, target, at_most=at_most, also_met=also_met) == code
    out = last_line(capsys)
    assert out == line
    assert float(out.split()[0].split("=")[1]) == round(ratio, 3)


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_py_spy_is_found_next_to_the_python_running_the_bench_without_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = executable(tmp_path / "venv" / "bin" / "py-spy")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert live.py_spy() == str(spy)
    on_path = executable(tmp_path / "elsewhere" / "py-spy")
    spy.unlink()
    assert live.py_spy() is None
    monkeypatch.setenv("PATH", f"{tmp_path / 'empty'}{os.pathsep}{on_path.parent}")
    assert live.py_spy() == str(on_path)


def test_profile_without_py_spy_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert live.main(["--profile", str(tmp_path / "profile.txt"), "--records", "10"]) == 2
    captured = capsys.readouterr()
    assert "pip install 'tailwatch[bench]'" in captured.err and captured.out == ""
    assert not (tmp_path / "profile.txt").exists()


def test_peers_without_bytewax_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(peers.importlib.util, "find_spec", lambda name: None)
    assert peers.main(["--records", "10"]) == 2
    assert "pip install 'tailwatch[bench]'" in capsys.readouterr().err


def test_every_benchmark_is_listed_and_the_helpers_are_not() -> None:
    names = benchmark_names()
    assert {"live", "peers", "memory", "parse", "replay"} <= set(names)
    assert not [name for name in names if name.startswith("_")]
