"""Every command with hostile input, as a user runs it (a subprocess): no traceback, the README's exit code, and a
one-line reason. Inputs: a directory given as a file, a missing file, an empty file, a binary (/bin/ls), a
truncated .gz, and an unreachable Kafka (127.0.0.1:1, one connection attempt)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agents.commands.common import EXIT_CHECK_FAILED, EXIT_KAFKA, EXIT_OK, EXIT_USAGE
from agents.settings import KafkaSettings

UNREACHABLE = ["--bootstrap", "127.0.0.1:1"]
HOSTILE = ("directory", "missing", "empty", "binary", "truncated_gz")
REASONS = {"directory": "is a directory", "missing": "no such file", "empty": "", "binary": "", "truncated_gz": ""}


def hostile_files(root: Path, capture: Path) -> dict[str, str]:
    (root / "a-directory").mkdir()
    (root / "empty.yaml").write_bytes(b"")
    packed = gzip.compress(capture.read_bytes())
    (root / "cut.json.gz").write_bytes(packed[: len(packed) // 2])
    return {"directory": str(root / "a-directory"), "missing": str(root / "no-such-file.json"),
            "empty": str(root / "empty.yaml"), "binary": "/bin/ls", "truncated_gz": str(root / "cut.json.gz")}


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TAILWATCH_KAFKA_BOOTSTRAP"}
    env["TAILWATCH_KAFKA_CONNECT_ATTEMPTS"] = "1"
    env["TAILWATCH_LOG_LEVEL"] = "ERROR"
    return subprocess.run([sys.executable, "-m", "agents.cli", *argv], capture_output=True, text=True,
                          timeout=120, env=env, stdin=subprocess.DEVNULL)


def reason(stderr: str) -> str:
    """The last line that is not one of tailwatch's JSON log lines."""
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith('{"timestamp"')]
    return lines[-1] if lines else ""


def check_all(cases: list[tuple[list[str], int, str]]) -> None:
    """Run the cases (four at a time) and report every one that misbehaves, not just the first."""
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda case: run(case[0]), cases))
    wrong = []
    for (argv, code, fragment), result in zip(cases, results, strict=True):
        line = reason(result.stderr)
        problems = []
        if "Traceback" in result.stderr:
            problems.append("a traceback")
        if result.returncode != code:
            problems.append(f"exit {result.returncode}, not {code}")
        if code != EXIT_OK and (not line or len(line) > 400 or fragment.lower() not in line.lower()):
            problems.append(f"reason {line!r} (wanted one line with {fragment!r})")
        if problems:
            wrong.append(f"tailwatch {' '.join(argv)}: {', '.join(problems)}\n{result.stderr[-1500:]}")
    assert not wrong, "\n\n".join(wrong)


def capture_cases(files: dict[str, str], sample: str) -> list[tuple[list[str], int, str]]:
    """Commands that read captures, and the files they take as options (rules, silences, channels, probes)."""
    cases: list[tuple[list[str], int, str]] = []
    for kind in HOSTILE:
        path = files[kind]
        not_there = kind in ("directory", "missing")
        capture_reason = REASONS[kind] or ("input damaged at byte" if kind == "truncated_gz"
                                           else "no wrangler tail events")
        cases += [(["parse", path], EXIT_USAGE, capture_reason),
                  (["replay", path], EXIT_USAGE, capture_reason),
                  (["replay", "--metrics", path], EXIT_USAGE, capture_reason),
                  (["report", "--no-rules", path], EXIT_USAGE, capture_reason),
                  # checked before Kafka when the file is not there; else Kafka is what fails first
                  (["ingest", "--from", path, *UNREACHABLE], EXIT_USAGE if not_there else EXIT_KAFKA,
                   capture_reason if not_there else "cannot reach Kafka"),
                  (["run", "--from", path, "--exit-when-done", *UNREACHABLE], EXIT_USAGE if not_there else EXIT_KAFKA,
                   capture_reason if not_there else "cannot reach Kafka")]
        # an option's file (rules, channels, probes): "cannot read: <strerror>" when it is not there
        option_reason = {"missing": "cannot read", "empty": "empty"}.get(kind) or REASONS[kind] or "UTF-8"
        # `rules check` exists to find problems in a rule file (exit 1); it can only check a file that is there
        cases += [(["rules", "check", path], EXIT_USAGE if not_there else EXIT_CHECK_FAILED,
                   REASONS[kind] or ("empty" if kind == "empty" else "not UTF-8")),
                  (["rules", "test", path], EXIT_USAGE, "no test files" if kind == "directory" else option_reason),
                  (["replay", "--rules", path, sample], EXIT_USAGE, option_reason),
                  (["report", "--rules", path, sample], EXIT_USAGE, option_reason),
                  (["worker", "--rules", path, *UNREACHABLE], EXIT_USAGE, option_reason),
                  (["channels", "list", "--channels", path], EXIT_USAGE, option_reason),
                  (["notify", "--channels", path, *UNREACHABLE], EXIT_USAGE, option_reason),
                  (["probe", "--config", path, *UNREACHABLE], EXIT_USAGE, option_reason)]
        if kind != "empty":  # an empty silence file is no silences
            cases.append((["replay", "--silences", path, sample], EXIT_USAGE,
                          "UTF-8" if kind in ("binary", "truncated_gz") else "cannot read"))
    return cases


def test_capture_and_file_commands_exit_with_a_reason(tmp_path: Path, sample_capture: Path) -> None:
    files = hostile_files(tmp_path, sample_capture)
    check_all(capture_cases(files, str(sample_capture)))


def test_every_kafka_command_says_kafka_is_unreachable(sample_capture: Path) -> None:
    sample = str(sample_capture)
    kafka = [["alerts", "tail"], ["alerts", "tail", "--follow"], ["replay", "--topic"], ["report", "--live"],
             ["silences", "list"], ["silences", "expire", "abc"],
             ["silences", "add", "--matcher", "rule=x", "--duration", "1h", "--comment", "c"],
             ["topics", "create", "--attempts", "1"], ["topics", "list"], ["worker"], ["notify"],
             ["probe", "--count", "1"], ["ingest", "--from", sample], ["run", "--from", sample, "--exit-when-done"],
             ["replay", sample, "--silences-topic"]]
    check_all([([*argv, *UNREACHABLE], EXIT_KAFKA, "cannot reach Kafka at 127.0.0.1:1") for argv in kafka])


def test_usage_errors_and_checks(tmp_path: Path) -> None:
    rule_file = str(Path(__file__).resolve().parents[2] / "agents" / "defaults" / "rules.yaml")
    check_all([
        (["rules"], EXIT_USAGE, "tailwatch rules test"),  # `rules` alone lists its actions
        (["schemas"], EXIT_USAGE, "tailwatch schemas check"),
        (["topics"], EXIT_USAGE, "tailwatch topics list"),
        (["rules", "test", rule_file], EXIT_USAGE, "expects a rule test file"),
        (["rules", "check", str(Path(__file__).resolve().parents[2] / "agents" / "defaults" / "rules-tests" /
                                "factory-404-spike.yaml")], EXIT_CHECK_FAILED, "this is a rule test file"),
        (["report"], EXIT_USAGE, "give capture FILEs or --live"),
        (["report", "--live"], EXIT_USAGE, "--live needs --bootstrap"),
        (["alerts", "tail"], EXIT_USAGE, "set --bootstrap"),
        (["topics", "create"], EXIT_USAGE, "set --bootstrap"),
        (["channels", "test", "no-such-channel"], EXIT_USAGE, "name one of"),
        (["channels", "test", "slack-critical"], EXIT_CHECK_FAILED, "is not active"),  # no webhook in the env
        (["worker", "--store", "redis://"], EXIT_USAGE, "give memory:// or rocksdb://"),
        (["schemas", "check"], EXIT_OK, ""),
    ])


def test_rules_test_on_a_rule_file_says_so_on_stderr() -> None:
    rule_file = str(Path(__file__).resolve().parents[2] / "agents" / "defaults" / "rules.yaml")
    result = run(["rules", "test", rule_file])
    assert "expects a rule test file" in result.stderr and "tailwatch rules check" in result.stderr
    assert "expects" not in result.stdout and "Field required" not in result.stdout + result.stderr


def test_schemas_check_says_what_it_checked(tmp_path: Path) -> None:
    result = run(["schemas", "check"])
    assert result.returncode == 0
    assert "JSON Schemas in" in result.stdout and "alert-event.json" in result.stdout
    stale = run(["schemas", "check", "--out", str(tmp_path)])
    assert stale.returncode == EXIT_CHECK_FAILED and "stale JSON Schemas" in reason(stale.stderr)


def test_rocksdb_store_without_rocksdict_names_the_extra() -> None:
    code = ("import sys; sys.modules['rocksdict'] = None; from agents.cli import main; "
            "sys.exit(main(['worker', '--store', 'rocksdb://', '--bootstrap', '127.0.0.1:1']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "pip install 'tailwatch[rocksdb]'" in reason(result.stderr)


def test_an_unexpected_error_is_reported_as_a_bug(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from agents import cli
    from agents.commands import schemas_cmd

    def broken(_: object) -> int:
        raise KeyError("no such key")

    monkeypatch.setattr(schemas_cmd, "run", broken)
    assert cli.main(["schemas", "check"]) == 4
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error (a bug in tailwatch" in err


@pytest.mark.integration
def test_ingest_reads_hostile_captures_on_a_real_broker(tmp_path: Path, sample_capture: Path,
                                                        kafka_settings: KafkaSettings) -> None:
    """With Kafka reachable, ingest gets to read the file: the same exit 2 and reasons as parse."""
    assert kafka_settings.bootstrap
    files = hostile_files(tmp_path, sample_capture)
    prefix = ["--bootstrap", kafka_settings.bootstrap, "--topic-prefix", kafka_settings.topic_prefix]
    wanted: dict[str, str] = {"empty": "no wrangler tail events", "binary": "no wrangler tail events",
                              "truncated_gz": "input damaged at byte"}
    check_all([(["ingest", "--from", files[kind], *prefix], EXIT_USAGE, text) for kind, text in wanted.items()])
    # run processes what a damaged file held, and its exit status says the file was incomplete (its own topics)
    check_all([(["run", "--from", files["truncated_gz"], "--exit-when-done", "--bootstrap", kafka_settings.bootstrap,
                 "--topic-prefix", f"{kafka_settings.topic_prefix}run"], EXIT_USAGE, "input damaged at byte")])



def test_the_readme_table_is_the_code_table() -> None:
    from agents.commands import common

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Exit codes"):]
    section = section[:section.index("\n## ")]
    documented = {int(row.split("|")[1]) for row in section.splitlines() if row.startswith("| ") and
                  row.split("|")[1].strip().isdigit()}
    in_code = {value for name, value in vars(common).items() if name.startswith("EXIT_")}
    assert documented == in_code | {70}  # 70: the worker's stall watchdog (agents/stall_watchdog.py)
