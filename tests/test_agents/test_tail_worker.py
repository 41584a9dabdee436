"""deploy/tail-worker: its batching and sending, run by Node against the real listener on loopback."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import orjson
import pytest

from agents.push_listener import ListenConfig
from agents.settings import KafkaSettings
from tests.push_support import running_listener, synthetic_events

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("node") is None, reason="Node is not installed")]

TAIL_WORKER = Path(__file__).resolve().parents[2] / "deploy" / "tail-worker"
TOKEN = "tail-worker-test-token-0123456789"


async def node(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "node", *args, cwd=TAIL_WORKER, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TAILWATCH_INGEST_TOKEN": TOKEN})
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_batching_by_count_and_bytes() -> None:
    script = ("import { batches } from './index.js';"
              "const events = Array.from({length: 1001}, (_, i) => ({i, pad: 'x'.repeat(i === 7 ? 5000 : 10)}));"
              "const byCount = batches(events, 250, 1e9).map((b) => JSON.parse(b).length);"
              "const byBytes = batches(events.slice(0, 10), 500, 2000).map((b) => JSON.parse(b).length);"
              "console.log(JSON.stringify({byCount, byBytes}));")
    result = orjson.loads(await node("--input-type=module", "-e", script))
    assert result == {"byCount": [250, 250, 250, 250, 1], "byBytes": [7, 1, 2]}  # event 7 is alone: too big


async def test_the_tail_worker_forwards_every_event_once(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    events = synthetic_events(1_100, seed=21)
    capture = tmp_path / "events.json"
    capture.write_bytes(orjson.dumps(events))
    config = ListenConfig(host="127.0.0.1", port=0, token=TOKEN)
    async with running_listener(kafka_settings, config) as run:
        url = f"{run.url}/v1/tail"
        statuses = orjson.loads(await node("forward_file.mjs", str(capture), url, "200"))
        assert statuses == [200] * 6
        stats = run.listener.feed.stats
        assert stats.events == 1_100 and stats.rejected == 0
        records = run.publisher.records_sent
        assert records == stats.records > 1_000
        # The same batches again (a Tail Worker retrying after a lost answer): accepted, not published again.
        assert orjson.loads(await node("forward_file.mjs", str(capture), url, "200")) == [200] * 6
        assert run.publisher.records_sent == records
        assert run.listener.metrics.duplicates._value.get() == 6
