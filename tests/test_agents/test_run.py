"""`tailwatch run --from X --exit-when-done` (the live pipeline on the embedded broker) prints exactly the alert
events `tailwatch replay X` prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from agents.cli import build_parser
from agents.commands.run import notify_web_args
from schemas.alerts import AlertEvent
from tests.captures import disordered_capture

pytestmark = pytest.mark.integration


def tailwatch(*args: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TAILWATCH_KAFKA_BOOTSTRAP"}
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], capture_output=True, text=True,
                          timeout=timeout_s, env=env)


def test_run_and_replay_print_the_same_alerts(sample_capture: Path, tmp_path: Path) -> None:
    capture = disordered_capture(sample_capture, tmp_path / "capture.json", copies=200)
    live = tailwatch("run", "--from", str(capture), "--exit-when-done")
    assert live.returncode == 0, live.stderr[-3000:]
    replay = tailwatch("replay", str(capture))
    assert replay.returncode == 0, replay.stderr
    live_alerts = [orjson.loads(line) for line in live.stdout.splitlines()]
    replay_alerts = [orjson.loads(line) for line in replay.stdout.splitlines()]
    assert len(replay_alerts) >= 3, "the capture should fire some of the default rules"
    # live-only provenance: the logs-topic offsets that fed each window (replay leaves them null)
    inputs = [alert["provenance"].pop("input") for alert in live_alerts]
    assert all(i is not None and i["topic"].endswith(".logs") and i["first_offset"] <= i["last_offset"]
               for i in inputs)
    assert all(alert["provenance"].pop("input") is None for alert in replay_alerts)
    assert live_alerts == replay_alerts
    for alert in live_alerts:
        AlertEvent.model_validate(alert)
    assert "input fully processed" in live.stderr


@pytest.mark.parametrize(("options", "expected"), [
    ([], []),
    (["--web-port", "6066"], ["--web-port", "6067", "--web-bind", "127.0.0.1"]),
    (["--web-port", "6066", "--notify-web-port", "7000", "--web-bind", "0.0.0.0"],
     ["--web-port", "7000", "--web-bind", "0.0.0.0"]),
    (["--notify-web-port", "7000"], ["--web-port", "7000", "--web-bind", "127.0.0.1"]),
])
def test_the_notifier_web_port(options: list[str], expected: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`run`'s notifier serves /health and /metrics on --notify-web-port, by default the port after --web-port."""
    monkeypatch.delenv("TAILWATCH_WEB_BIND", raising=False)
    args = build_parser().parse_args(["run", "--from", "capture.json", *options])
    assert notify_web_args(args) == expected
