"""The listener's bearer token: 401 without it, no start without one off loopback, never in its output."""

from __future__ import annotations

import argparse
import gzip
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from agents.push_listener import ListenConfig
from agents.settings import KafkaSettings
from tests.push_support import array_body, running_listener, synthetic_events

pytestmark = pytest.mark.integration

TOKEN = "s3cret-push-token-0123456789abcdef"


async def test_requests_without_the_token_are_refused(kafka_settings: KafkaSettings) -> None:
    config = ListenConfig(host="127.0.0.1", port=0, token=TOKEN)
    body = array_body(synthetic_events(20))
    async with running_listener(kafka_settings, config) as run, aiohttp.ClientSession() as session:
        url = f"{run.url}/v1/tail"
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": TOKEN}):
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == 401
                assert TOKEN not in await response.text()
        assert run.publisher.records_sent == 0
        async with session.post(url, data=body, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200
        assert run.publisher.records_sent > 0


def tailwatch_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "TAILWATCH_INGEST_TOKEN"}
    return {**env, **extra}


@pytest.mark.parametrize("address", ["0.0.0.0:0", "8787", "192.0.2.1:8787"])
def test_no_token_off_loopback_exits_2(address: str, kafka_settings: KafkaSettings) -> None:
    result = subprocess.run([sys.executable, "-m", "agents.cli", "ingest", "--listen", address,
                             "--bootstrap", kafka_settings.bootstrap or ""],
                            capture_output=True, text=True, timeout=60, env=tailwatch_env())
    assert result.returncode == 2, result.stderr
    assert "TAILWATCH_INGEST_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_short_token_and_a_bad_address_exit_2() -> None:
    for address, env in (("0.0.0.0:8787", tailwatch_env(TAILWATCH_INGEST_TOKEN="short")),
                         ("127.0.0.1:port", tailwatch_env())):
        result = subprocess.run([sys.executable, "-m", "agents.cli", "ingest", "--listen", address],
                                capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert "short" not in result.stderr.replace("shorter", "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_command_serves_with_a_token_and_never_prints_it(kafka_settings: KafkaSettings) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "ingest", "--listen", f"127.0.0.1:{port}",
         "--bootstrap", kafka_settings.bootstrap or "", "--topic-prefix", kafka_settings.topic_prefix,
         "--partitions", str(kafka_settings.partitions)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=tailwatch_env(TAILWATCH_INGEST_TOKEN=TOKEN))
    try:
        deadline = time.monotonic() + 60
        while True:  # bounded: until /health answers or the deadline
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        body = gzip.compress(array_body(synthetic_events(50)))
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/tail", data=body, headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        unauthorized = urllib.request.Request(f"http://127.0.0.1:{port}/v1/tail", data=body)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(unauthorized, timeout=30)
        assert refused.value.code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert TOKEN.encode() not in out + err
    assert b"published=" in err


def test_the_token_may_come_from_a_file_named_in_tailwatch_yaml(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.commands.ingest import listen_config

    (tmp_path / "token").write_text(TOKEN + "\n")
    config = tmp_path / "tailwatch.yaml"
    config.write_text("ingest:\n  token_file: token\n")
    monkeypatch.delenv("TAILWATCH_INGEST_TOKEN", raising=False)
    args = argparse.Namespace(listen="0.0.0.0:8787", tailwatch_config=str(config), max_body_bytes=1 << 20,
                              max_concurrent=4)
    assert listen_config(args).token == TOKEN
    monkeypatch.setenv("TAILWATCH_INGEST_TOKEN", "from-the-environment-0123")  # the environment wins
    assert listen_config(args).token == "from-the-environment-0123"
    result = subprocess.run([sys.executable, "-m", "agents.cli", "config", "show", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, env=tailwatch_env())
    assert TOKEN not in result.stdout + result.stderr
