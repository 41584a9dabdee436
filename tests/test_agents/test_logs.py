"""tailwatch's own logs: JSON lines with timestamp, level, service, message and fields; secrets never appear."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from agents.logs import JsonFormatter, logs_to_file, mask_url, redact, relay_line
from agents.settings import KafkaSettings

TOKEN = "cf-api-tok-7Hq2ZxP9wLm4"  # a made-up secret the logs must not show
WEBHOOK = "https://hooks.slack.com/services/T000/B000/xoxb9secret"


def record(message: str, *args: object, fields: dict | None = None, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"delivery to {WEBHOOK} failed with token {TOKEN}")
        except RuntimeError:
            exc_info = sys.exc_info()
    entry = logging.LogRecord("tailwatch.test", logging.WARNING, __file__, 1, message, args, exc_info)
    if fields is not None:
        entry.fields = fields
    return entry


@pytest.fixture
def formatter(monkeypatch: pytest.MonkeyPatch) -> JsonFormatter:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", WEBHOOK)
    return JsonFormatter("tailwatch-worker")


def test_a_line_is_one_json_object_with_the_required_keys(formatter: JsonFormatter) -> None:
    line = formatter.format(record("processed %d records", 42, fields={"partition": 3, "late": 0}))
    assert "\n" not in line
    entry = orjson.loads(line)
    assert list(entry)[:4] == ["timestamp", "level", "service", "logger"]
    assert entry["level"] == "warning"
    assert entry["service"] == "tailwatch-worker"
    assert entry["message"] == "processed 42 records"
    assert entry["fields"] == {"partition": 3, "late": 0}
    stamp = datetime.fromisoformat(entry["timestamp"])
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
    assert abs(stamp.timestamp() - time.time()) < 60
    assert orjson.loads(formatter.format(record("no fields")))["fields"] == {}


def test_secrets_are_redacted_in_message_fields_and_exceptions(formatter: JsonFormatter) -> None:
    line = formatter.format(record(f"using token {TOKEN}", fields={"url": WEBHOOK, "nested": {"t": TOKEN}},
                                   exc=True))
    assert TOKEN not in line
    assert "xoxb9secret" not in line and "/services/" not in line
    entry = orjson.loads(line)
    assert entry["message"] == "using token ***"
    assert entry["fields"]["nested"] == {"t": "***"}
    assert "RuntimeError: delivery to *** failed with token ***" in entry["exception"]


def test_urls_are_masked_even_when_no_environment_variable_names_them() -> None:
    assert mask_url("https://user:pw@hooks.example.com/services/T/B/x?key=y") == "https://***@hooks.example.com/***"
    assert mask_url("https://api.example.com?token=abc") == "https://api.example.com/***"
    assert mask_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/"
    assert mask_url("kafka://127.0.0.1:9092") == "kafka://127.0.0.1:9092"
    assert mask_url("pagerduty://integrationkey@apikey") == "pagerduty://***"
    assert mask_url("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkc") == "slack://***"
    text = redact('{"message":"POST https://hooks.example.com/h/abc123?sig=zz failed, retrying mailto://u:p@x.org"}',
                  secrets=[])
    assert text == '{"message":"POST https://hooks.example.com/*** failed, retrying mailto://***"}'


def test_masking_a_long_line_takes_linear_time() -> None:
    # log-derived text in a line: with Python's `re`, this URL pattern took 44 s on a 100,000-character `a.a.…` run
    line = "a." * 50_000 + " https://u:p@hooks.example.com/x?k=y " + "b-" * 50_000
    started = time.perf_counter()
    text = redact(line, secrets=[])
    elapsed = time.perf_counter() - started
    assert " https://***@hooks.example.com/*** " in text and "u:p" not in text
    assert elapsed < 0.05, f"{elapsed * 1000:.1f} ms"


FAKE_WRANGLER = f"""#!{sys.executable}
import os, sys
sys.stderr.write("auth error: token " + os.environ["CLOUDFLARE_API_TOKEN"] + " rejected by "
                 "https://ops:hunter22@api.cloudflare.com/client/v4/accounts?api_key=k3y\\n")
sys.stderr.flush()
sys.exit(1)
"""


@pytest.mark.integration
def test_a_command_logs_json_lines_without_secrets(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    """`tailwatch ingest --wrangler` relays wrangler's stderr into its log: the token and the URL's
    credentials wrangler printed are redacted there, and every line on stderr is a JSON object."""
    script = tmp_path / "wrangler"
    script.write_text(FAKE_WRANGLER)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN, "TAILWATCH_WRANGLER": str(script),
           "TAILWATCH_KAFKA_BOOTSTRAP": kafka_settings.bootstrap or ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "ingest", "--wrangler", "factory-gateway",
         "--topic-prefix", kafka_settings.topic_prefix],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "wrangler stderr" in line:
                break
    finally:
        process.kill()
        process.wait(timeout=10)
    text = "".join(lines)
    assert "wrangler stderr" in text, text
    assert TOKEN not in text and "hunter22" not in text and "k3y" not in text
    entries = [orjson.loads(line) for line in lines]
    assert all({"timestamp", "level", "service", "message", "fields"} <= set(entry) for entry in entries)
    assert {entry["service"] for entry in entries} == {"tailwatch-ingest"}
    relayed = next(entry for entry in entries if entry["message"] == "wrangler stderr")
    assert relayed["fields"]["line"] == "auth error: token *** rejected by https://***@api.cloudflare.com/***"


def test_logs_to_file_takes_own_and_relayed_lines_off_stderr(tmp_path: Path, capfd: pytest.CaptureFixture[str]
                                                             ) -> None:
    """`tailwatch demo`'s screen: inside the block its log lines and its children's go to the file only."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter("tailwatch-demo"))
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        log_file = tmp_path / "demo.log"
        log_file.write_text("a previous run\n")
        with logs_to_file(log_file):
            logging.getLogger("tailwatch.test").info("own line", extra={"fields": {"n": 1}})
            relay_line('{"service":"tailwatch-worker","message":"child line"}\n')
        relay_line('{"service":"tailwatch-worker","message":"after"}\n')
        lines = [orjson.loads(line) for line in log_file.read_text().splitlines()]
        assert [(line["service"], line["message"]) for line in lines] == [
            ("tailwatch-demo", "own line"), ("tailwatch-worker", "child line")]
        assert capfd.readouterr().err == '{"service":"tailwatch-worker","message":"after"}\n'
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def test_children_log_info_and_the_parent_relays_what_its_level_lets_through(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`TAILWATCH_LOG_LEVEL=ERROR tailwatch run` waited forever: its children logged no "worker ready"."""
    import logging

    from agents.logs import child_log_env, relay_line

    root = logging.getLogger()
    before = root.level
    try:
        root.setLevel(logging.ERROR)
        assert child_log_env({"X": "1"}) == {"X": "1", "TAILWATCH_LOG_LEVEL": "INFO"}
        for level in ("info", "warning", "error"):
            relay_line(f'{{"timestamp":"t","level":"{level}","service":"tailwatch-worker","message":"m"}}\n')
        relay_line("not a log line\n")
        assert capsys.readouterr().err.splitlines() == [
            '{"timestamp":"t","level":"error","service":"tailwatch-worker","message":"m"}', "not a log line"]
        root.setLevel(logging.DEBUG)
        assert child_log_env({})["TAILWATCH_LOG_LEVEL"] == "DEBUG"
    finally:
        root.setLevel(before)
