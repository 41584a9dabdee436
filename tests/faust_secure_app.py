"""A Faust worker with a table, connected with `faust_credentials()` from a tailwatch.yaml (test helper).

    python -m tests.faust_secure_app CONFIG TOPIC RESULT

Creates TOPIC, produces three messages to it with `aiokafka_kwargs()`, consumes them with a Faust agent that
counts them in a changelog-backed table, writes `{"values": [...], "count": n}` to RESULT and stops; after 60 s
it stops anyway (RESULT then holds what arrived).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
from pathlib import Path

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agents.config_file import load_config

DEADLINE_S = 60.0
EXPECTED = 3


def main(config_path: str, topic_name: str, result_path: str) -> None:
    settings = load_config(Path(config_path), env={}).kafka_settings()
    security, bootstrap = settings.security, settings.bootstrap
    assert bootstrap

    async def create_topic() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.aiokafka_kwargs())
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic_name, 1, 1)])
        finally:
            await admin.close()

    asyncio.run(create_topic())
    app = faust.App(topic_name, broker=f"kafka://{bootstrap}", broker_credentials=security.faust_credentials(),
                    web_enabled=False, topic_disable_leader=True, consumer_auto_offset_reset="earliest",
                    store="memory://", datadir=tempfile.mkdtemp())
    topic = app.topic(topic_name, value_type=bytes, value_serializer="raw", partitions=1)
    counts = app.Table("counts", partitions=1, key_type=str, value_type=int, default=int)
    values: list[str] = []
    worker = faust.Worker(app, loglevel="warning", quiet=True)

    @app.agent(topic)
    async def consume(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            values.append(value.decode())
            counts["seen"] += 1

    @app.task
    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **security.aiokafka_kwargs())
        await producer.start()
        try:
            for n in range(EXPECTED):
                await producer.send_and_wait(topic_name, f"message {n}".encode())
        finally:
            await producer.stop()

    @app.task
    async def finish() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while len(values) < EXPECTED and loop.time() < deadline:
            await asyncio.sleep(0.1)
        Path(result_path).write_text(json.dumps({"values": values, "count": counts["seen"]}))
        await worker.stop()

    with contextlib.suppress(SystemExit):  # the worker exits the process's way when it stops
        worker.execute_from_commandline()


if __name__ == "__main__":
    main(*sys.argv[1:4])
