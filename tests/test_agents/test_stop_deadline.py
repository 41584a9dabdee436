"""A stop is bounded: a worker or notifier whose Kafka is gone exits within its `--stop-timeout` of SIGTERM (code 3,
saying why), where Faust would wait for it a minute per service; the deadline itself ends a process that does not
end by itself, and leaves one that does alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pytest

from agents.commands.common import EXIT_KAFKA
from agents.embedded_broker import EmbeddedBroker

READY_TIMEOUT_S = 120.0
READY_LINES = {"worker": '"worker ready"', "notify": '"notifier ready"'}
STOP_TIMEOUT_S = 3.0
# Process exit after the deadline: the log line, logging's shutdown, os._exit; generous on a loaded machine.
EXIT_MARGIN_S = 15.0


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parents[2])


def test_the_deadline_ends_a_process_that_does_not_end_by_itself() -> None:
    started = time.monotonic()
    done = _run("import time\nfrom agents.stop_deadline import exit_after\n"
                "exit_after(0.5, 'took too long', 3)\ntime.sleep(50)\n")
    assert done.returncode == 3 and "took too long" in done.stderr
    assert time.monotonic() - started < 30


def test_a_process_that_ends_in_time_ends_as_it_would() -> None:
    done = _run("from agents.stop_deadline import exit_after\nexit_after(30, 'took too long', 3)\nprint('done')\n")
    assert (done.returncode, done.stdout.strip()) == (0, "done")
    assert "took too long" not in done.stderr


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "soon"])
def test_a_stop_timeout_that_is_not_a_number_of_seconds_is_a_usage_error(value: str) -> None:
    done = _run(f"import sys\nfrom agents.cli import main\nsys.exit(main(['worker', '--stop-timeout', '{value}']))\n")
    assert done.returncode == 2 and "--stop-timeout" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.integration
@pytest.mark.parametrize("command", ["worker", "notify"])
def test_sigterm_with_kafka_gone_exits_within_the_stop_timeout(command: str) -> None:
    with tempfile.TemporaryDirectory() as data_dir, tempfile.TemporaryFile("w+") as log:
        broker = EmbeddedBroker()
        broker.__enter__()
        try:
            env = {**os.environ, "TAILWATCH_KAFKA_BOOTSTRAP": broker.bootstrap}
            process = subprocess.Popen(
                [sys.executable, "-m", "agents.cli", command, "--topic-prefix", f"stop{command}", "--data-dir",
                 data_dir, "--stop-timeout", str(STOP_TIMEOUT_S)],
                env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
            try:
                _wait_for_line(log, READY_LINES[command], process)
            except BaseException:
                process.kill()
                process.wait()
                raise
        finally:
            broker.__exit__(None, None, None)  # Kafka is gone
        try:
            process.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            code = process.wait(timeout=STOP_TIMEOUT_S + EXIT_MARGIN_S)
            took = time.monotonic() - stopped
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        lines = _lines(log)
        reasons = [line for line in lines if "the stop did not finish in time" in line.get("message", "")]
        assert code == EXIT_KAFKA and len(reasons) == 1, lines[-5:]
        assert reasons[0]["level"] == "error" and reasons[0]["fields"]["seconds"] == STOP_TIMEOUT_S
        assert took < STOP_TIMEOUT_S + EXIT_MARGIN_S


def _wait_for_line(log: object, text: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(text in line.get("raw", "") for line in _lines(log)):
            return
        if process.poll() is not None:
            raise AssertionError(f"exited ({process.returncode}) before {text}: {_lines(log)[-5:]}")
        time.sleep(0.1)
    raise AssertionError(f"no {text} within {READY_TIMEOUT_S} s")


def _lines(log: object) -> list[dict]:
    """The process's JSON log lines so far (each also with its raw text)."""
    assert hasattr(log, "seek") and hasattr(log, "read")
    log.seek(0)
    out = []
    for raw in log.read().splitlines():
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            line = {"message": raw}
        out.append({**line, "raw": raw} if isinstance(line, dict) else {"message": raw, "raw": raw})
    return out
