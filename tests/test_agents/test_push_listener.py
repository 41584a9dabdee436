"""`tailwatch ingest --listen`: pushed TraceItems over real HTTP on loopback into the embedded broker."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka.errors import KafkaError

from agents.push_listener import ListenConfig
from agents.settings import KafkaSettings
from pipeline.synthetic import render_capture
from tests.logpush_lines import logpush_body
from tests.push_support import array_body, running_listener, synthetic_events
from tests.support import read_topic, records_of_batches

pytestmark = pytest.mark.integration


def canon(record: dict) -> bytes:
    record = {key: value for key, value in record.items() if key != "watermark_ms"}
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def parse_records(events: list[dict], tmp_path: Path) -> list[dict]:
    """What `tailwatch parse` prints for the same events, as wrangler prints them."""
    capture = tmp_path / "capture.json"
    capture.write_bytes(b"".join(render_capture(events)))
    result = subprocess.run([sys.executable, "-m", "agents.cli", "parse", str(capture)], capture_output=True,
                            timeout=120, check=True)
    return [orjson.loads(line) for line in result.stdout.splitlines()]


async def test_pushed_events_publish_exactly_what_parse_gives(kafka_settings: KafkaSettings,
                                                              tmp_path: Path) -> None:
    events = synthetic_events(1_200)
    expected = parse_records(events, tmp_path)
    assert len(expected) > 1_000
    async with running_listener(kafka_settings, batch_records=100) as run, aiohttp.ClientSession() as session:
        for index, start in enumerate(range(0, len(events), 250)):  # in order: the endpoint catalog sees parse's
            gzipped = index % 2 == 1
            headers = {"Content-Encoding": "gzip"} if gzipped else {}
            async with session.post(f"{run.url}/v1/tail", data=array_body(events[start:start + 250], gzipped),
                                    headers=headers) as response:
                assert response.status == 200, await response.text()
                answer = await response.json()
            assert answer["events"] == len(events[start:start + 250])
        batches = run.publisher.batches_sent
    messages = await read_topic(kafka_settings.bootstrap or "", kafka_settings.logs_topic, until=batches)
    received = records_of_batches(messages, kafka_settings.partitions, max_records=100)
    assert Counter(map(canon, received)) == Counter(map(canon, expected))
    # One producer for the listener; every partition ends with a final batch carrying its watermark.
    assert len({message.value["producer"] for message in messages}) == 1
    finals = [message for message in messages if message.value["final"]]
    assert sorted(message.partition for message in finals) == list(range(kafka_settings.partitions))
    top = max(record["event_time_ms"] for record in expected)
    assert all(message.value["watermark_ms"] == top - 10_000 for message in finals)


async def test_concurrent_clients_are_all_acknowledged(kafka_settings: KafkaSettings) -> None:
    events = synthetic_events(2_000, seed=5)
    bodies = [array_body(events[start:start + 100]) for start in range(0, len(events), 100)]
    config = ListenConfig(host="127.0.0.1", port=0, max_concurrent=2, max_waiting=100)
    async with running_listener(kafka_settings, config) as run, aiohttp.ClientSession() as session:
        async def post(body: bytes) -> int:
            async with session.post(f"{run.url}/v1/tail", data=body) as response:
                return response.status
        statuses = await asyncio.gather(*(post(body) for body in bodies))
        records_sent = run.publisher.records_sent
    assert statuses == [200] * len(bodies)
    assert records_sent == run.listener.feed.stats.records > 1_800


async def test_malformed_and_oversized_bodies(kafka_settings: KafkaSettings) -> None:
    config = ListenConfig(host="127.0.0.1", port=0, max_body_bytes=4096)
    async with running_listener(kafka_settings, config) as run, aiohttp.ClientSession() as session:
        url = f"{run.url}/v1/tail"
        async with session.post(url, data=b'[{"outcome": "ok", oops]') as response:
            assert response.status == 400
            assert "not JSON" in (await response.json())["error"]
        async with session.post(url, data=b'{"outcome": "ok"}') as response:
            assert response.status == 400
            assert "not an array" in (await response.json())["error"]
        async with session.post(url, data=b"\x1f\x8b garbage", headers={"Content-Encoding": "gzip"}) as response:
            assert response.status == 400
        async with session.post(url, data=b"[" + b" " * 5000 + b"]") as response:
            assert response.status == 413
        bomb = array_body([{"x": "a" * 100_000}], compress=True)  # small compressed, over the limit inflated
        assert len(bomb) < 4096
        async with session.post(url, data=bomb, headers={"Content-Encoding": "gzip"}) as response:
            assert response.status == 413
        items = b'[3, {"hello": 1}, {"outcome": "ok"}]'  # bad items cost only themselves
        async with session.post(url, data=items) as response:
            assert response.status == 200
            assert (await response.json())["rejected"] == 2
        async with session.get(f"{run.url}/metrics") as response:
            text = await response.text()
    assert 'tailwatch_push_rejected_bodies_total{kind="body_too_large",route="tail"} 2.0' in text
    assert 'tailwatch_push_requests_total{route="tail",status="400"} 3.0' in text
    assert 'tailwatch_push_rejected_events_total{route="tail"} 2.0' in text
    letters = await read_topic(kafka_settings.bootstrap or "", kafka_settings.deadletter_topic, until=5)
    kinds = Counter(message.value["kind"] for message in letters)
    assert kinds == {"malformed_json": 1, "not_an_array": 1, "malformed_gzip": 1, "not_an_event": 2}


async def test_logpush_bodies_publish_what_parse_gives(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    events = synthetic_events(600, seed=9)
    expected = parse_records(events, tmp_path)
    async with running_listener(kafka_settings) as run, aiohttp.ClientSession() as session:
        url = f"{run.url}/v1/logpush"
        for body in (gzip.compress(b'{"content":"tests"}'), logpush_body(events[:300]), logpush_body(events[300:])):
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                assert response.status == 200, await response.text()
        async with session.post(url, data=gzip.compress(b'{"EventTimestampMs": 1}\nnot json\n')) as response:
            assert response.status == 400
        batches = run.publisher.batches_sent
    messages = await read_topic(kafka_settings.bootstrap or "", kafka_settings.logs_topic, until=batches)
    received = records_of_batches(messages, kafka_settings.partitions, max_records=500)
    # The dataset has no executionModel field: the only difference from the Tail Worker's records.
    assert {record["execution_model"] for record in received} == {None}
    assert {record["execution_model"] for record in expected} == {"stateless"}
    without_model = lambda r: canon({**r, "execution_model": None})  # noqa: E731
    assert Counter(map(without_model, received)) == Counter(map(without_model, expected))
    letters = await read_topic(kafka_settings.bootstrap or "", kafka_settings.deadletter_topic, until=1)
    assert [(m.value["kind"], m.value["source"]) for m in letters] == [("malformed_ndjson", "http:/v1/logpush")]


async def test_a_retried_body_is_published_once(kafka_settings: KafkaSettings) -> None:
    events = synthetic_events(300, seed=11)
    async with running_listener(kafka_settings) as run, aiohttp.ClientSession() as session:
        url = f"{run.url}/v1/tail"
        async with session.post(url, data=array_body(events)) as response:
            assert response.status == 200
        records = run.publisher.records_sent
        assert records > 250
        for body, headers in ((array_body(events), {}),  # a retry, plain or compressed
                              (array_body(events, compress=True), {"Content-Encoding": "gzip"})):
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == 200
                assert (await response.json()) == {"duplicate": True}
        assert run.publisher.records_sent == records
        async with session.post(url, data=array_body(events[:299])) as response:  # another body: published
            assert response.status == 200
        assert run.publisher.records_sent > records
        async with session.get(f"{run.url}/metrics") as response:
            text = await response.text()
        async with session.get(f"{run.url}/health") as response:
            assert response.status == 200
            health = await response.json()
    assert health["checks"] == {"kafka": True, "queue": True} and health["request_keys"] == 2
    assert "tailwatch_push_duplicate_requests_total 2.0" in text
    assert 'tailwatch_push_requests_total{route="tail",status="200"} 4.0' in text
    assert 'tailwatch_push_records_total{route="tail"}' in text
    assert "tailwatch_push_kafka_ack_seconds_count 2.0" in text


async def test_kafka_down_answers_503_with_retry_after(kafka_settings: KafkaSettings) -> None:
    from agents.embedded_broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        settings = KafkaSettings(bootstrap=broker.bootstrap, topic_prefix=kafka_settings.topic_prefix,
                                 partitions=2, replication_factor=1)
        config = ListenConfig(host="127.0.0.1", port=0, ack_timeout_s=2, retry_after_s=7)
        events = synthetic_events(100, seed=3)
        with pytest.raises(KafkaError, match="sends failed"):  # at stop, the final batches cannot be delivered
            async with running_listener(settings, config) as run, aiohttp.ClientSession() as session:
                url = f"{run.url}/v1/tail"
                async with session.post(url, data=array_body(events[:50])) as response:
                    assert response.status == 200
                broker.kill()
                async with session.post(url, data=array_body(events[50:])) as response:
                    assert response.status == 503
                    assert response.headers["Retry-After"] == "7"
                async with session.post(url, data=array_body(events[50:])) as response:  # not taken as published
                    assert response.status == 503
                async with session.get(f"{run.url}/health") as response:
                    assert response.status == 503
                    health = await response.json()
                assert health["status"] == "degraded" and health["checks"] == {"kafka": False, "queue": True}


async def test_requests_past_the_wait_queue_get_503(kafka_settings: KafkaSettings) -> None:
    """One slot, one waiting place: a third request is refused at once, the first two complete."""
    events = synthetic_events(40, seed=2)
    body = array_body(events)
    release = asyncio.Event()

    async def slow_body():  # the first request holds its slot until released
        yield body[:10]
        await release.wait()
        yield body[10:]

    config = ListenConfig(host="127.0.0.1", port=0, max_concurrent=1, max_waiting=1, retry_after_s=3)
    async with running_listener(kafka_settings, config) as run, aiohttp.ClientSession() as session:
        url = f"{run.url}/v1/tail"

        async def post(data: object) -> int:
            async with session.post(url, data=data) as response:
                return response.status

        first = asyncio.create_task(post(slow_body()))
        second = asyncio.create_task(post(array_body(events[:20])))
        for _ in range(500):  # bounded: until the second request waits (so the first holds the slot)
            async with session.get(f"{run.url}/health") as response:
                health = await response.json()
            if health["details"]["queue"]["waiting"] == 1:
                break
            await asyncio.sleep(0.01)
        assert health["details"]["queue"] == {"waiting": 1, "bound": 1}
        assert health["checks"]["queue"] is False
        async with session.post(url, data=array_body(events[20:])) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "3"
        release.set()
        assert await asyncio.gather(first, second) == [200, 200]
        assert run.listener.feed.stats.events == 60
