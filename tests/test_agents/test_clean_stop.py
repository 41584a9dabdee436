"""Stopping is clean: SIGTERM or SIGINT to `tailwatch run` or `tailwatch demo` stops its children in order (worker,
notifier, then the broker) and it exits 0; SIGKILL to it does not leave them running either. Either way no
process it started remains and every port they held is free. Faust's own web views, which show state without
authentication, are off in the worker and the notifier. The worker checkpoints on SIGTERM; the notifier finishes
the send in flight."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.commands.ingest import log_topic_specs
from agents.embedded_broker import EmbeddedBroker
from agents.ingest import Ingestor
from agents.publisher import Publisher
from agents.settings import KafkaSettings
from agents.sources import file_chunks
from agents.topics import ensure_topics
from tests.alert_samples import alert_event
from tests.captures import disordered_capture
from tests.kafka_tier import free_port
from tests.receivers import HttpReceiver, Reply
from tests.support import ledger_deliveries, read_topic
from tests.test_agents.test_notify.channels import SLACK_SECRET_PATH, channel_env, channel_file
from tests.test_agents.test_notify.test_notifier import keys_of, publish, start
from tests.test_agents.test_wrangler_tail import FAKE_WRANGLER
from tests.test_agents.worker_web import WebWorker, value, wait_for

pytestmark = pytest.mark.integration

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 40.0  # `run` gives each child 10 s before SIGKILL
ORPHAN_TIMEOUT_S = 20.0  # an orphan stops within 5 s (agents/parent_watch.py), plus polling, on a loaded machine
# A port is released by the kernel shortly after its process is gone: a connection the dead process had accepted
# closes asynchronously (seen once in ~15 runs: busy at the first look, free a moment later).
PORT_RELEASE_TIMEOUT_S = 10.0
FAUST_VIEWS = ("/table", "/table/", "/table/panes/", "/router", "/router/", "/router/topics", "/graph", "/graph/",
               "/assignment", "/assignment/", "/stats", "/stats/", "/signals", "/tables", "/tables/", "/performance/")

Process = tuple[int, str]  # pid, start time (a pid can be reused; its start time tells the processes apart)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, …


def children_of(parent: int) -> list[Process]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None and int(fields[1]) == parent:
            found.append((int(entry.name), fields[19]))
    return found


def running(process: Process) -> bool:
    fields = _stat(process[0])
    return fields is not None and fields[19] == process[1] and fields[0] != "Z"


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:`port` now (connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


class Parent:
    """A `tailwatch` command that starts children, its stderr in a file (`log`); its JSON log lines are read from
    there, or from `json_log` (`demo --log-file`)."""

    def __init__(self, log: Path, *args: str, env: dict[str, str] | None = None, json_log: Path | None = None
                 ) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("TAILWATCH_KAFKA_BOOTSTRAP", "TAILWATCH_LOG_LEVEL")
               } | (env or {})
        env["TMPDIR"] = str(log.parent)  # what a killed parent cannot remove stays in the test's directory
        self.log_path = log
        self.json_log = json_log or log
        self.children: list[Process] = []
        self.log = log.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "agents.cli", *args], env=env,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)

    def lines(self) -> list[dict[str, Any]]:
        lines = []
        if not self.json_log.exists():  # not opened yet
            return []
        for line in self.json_log.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                if isinstance(value := orjson.loads(line), dict):
                    lines.append(value)
        return lines

    def messages(self) -> list[tuple[str, str]]:
        return [(line.get("service", ""), line.get("message", "")) for line in self.lines()]

    def wait_for(self, *messages: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(m in {message for _, message in self.messages()} for m in messages):
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no {messages} in {READY_TIMEOUT_S}s"
            time.sleep(0.1)

    def broker_port(self) -> int:
        [bootstrap] = [line["fields"]["bootstrap"] for line in self.lines()
                       if line.get("message") == "embedded broker started"]
        return int(bootstrap.rsplit(":", 1)[1])

    def close(self) -> None:
        """Kill what is left (after a failure): the parent and the children it had."""
        children = self.children or children_of(self.process.pid)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for process in children:
            if running(process):
                os.kill(process[0], signal.SIGKILL)
        self.log.close()


def wait_gone(processes: list[Process], timeout_s: float) -> list[Process]:
    """The processes still running after `timeout_s` (none, as soon as they are all gone)."""
    deadline = time.monotonic() + timeout_s
    while (left := [p for p in processes if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


async def get_status(port: int, path: str) -> int:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, \
            session.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status


def stop_and_check(parent: Parent, signum: int, ports: list[int], children_count: int = 3) -> None:
    """Send `signum` to the parent; then none of the children it had remains, and every port is free."""
    parent.children = children = children_of(parent.process.pid)
    assert len(children) == children_count, children  # broker, worker, notifier
    parent.process.send_signal(signum)
    code = parent.process.wait(STOP_TIMEOUT_S)
    if signum == signal.SIGKILL:
        assert code == -signal.SIGKILL
        assert wait_gone(children, ORPHAN_TIMEOUT_S) == [], "children outlived their killed parent"
    else:
        assert code == 0, parent.log_path.read_text()[-3000:]  # a clean stop on request
        assert [p for p in children if running(p)] == []
    assert busy_ports(ports, PORT_RELEASE_TIMEOUT_S) == []


def busy_ports(ports: list[int], timeout_s: float) -> list[int]:
    """The ports still not free once `timeout_s` has passed (checked every 50 ms; [] as soon as all are free)."""
    deadline = time.monotonic() + timeout_s
    while True:
        busy = [port for port in ports if not port_free(port)]
        if not busy or time.monotonic() > deadline:
            return busy
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["TERM", "INT", "KILL"])
async def test_run_stops_its_children(signum: int, sample_capture: Path, tmp_path: Path) -> None:
    capture = disordered_capture(sample_capture, tmp_path / "capture.json", copies=20)
    web, notify_web = free_port(), free_port()
    parent = Parent(tmp_path / "run.log", "run", "--from", str(capture), "--web-port", str(web),
                    "--notify-web-port", str(notify_web))
    try:
        parent.wait_for("embedded broker started", "worker ready", "notifier ready", "input fully processed")
        if signum == signal.SIGTERM:  # the web servers: tailwatch's views, none of Faust's
            for port in (web, notify_web):
                assert await get_status(port, "/metrics") == 200
                assert {path: await get_status(port, path) for path in FAUST_VIEWS} == dict.fromkeys(FAUST_VIEWS, 404)
            assert await get_status(web, "/dashboard") == 200
        stop_and_check(parent, signum, [parent.broker_port(), web, notify_web])
        if signum != signal.SIGKILL:
            messages = parent.messages()
            # In order: the worker (it checkpoints), then the notifier; the broker after both.
            stops = [line["fields"]["child"] for line in parent.lines() if line.get("message") == "child stopped"]
            assert stops == ["worker", "notifier"]
            assert ("tailwatch-worker", "checkpointed on stop") in messages
            assert ("tailwatch-notify", "notifier stopped") in messages
            assert messages.index(("tailwatch-run", "stopping")) < messages.index(
                ("tailwatch-worker", "checkpointed on stop")) < messages.index(("tailwatch-notify", "notifier stopped"))
    finally:
        parent.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_demo_stops_its_children(signum: int, tmp_path: Path) -> None:
    json_log = tmp_path / "demo-json.log"
    parent = Parent(tmp_path / "demo.log", "demo", "--log-file", str(json_log), json_log=json_log)
    try:
        parent.wait_for("embedded broker started", "worker ready")
        stop_and_check(parent, signum, [parent.broker_port()])
    finally:
        parent.close()


async def test_a_stopped_worker_checkpoints_and_commits_what_it_applied(kafka_settings: KafkaSettings,
                                                                        sample_capture: Path, tmp_path: Path) -> None:
    """Records that are in no checkpoint yet (an open input: no final batch, and the periodic checkpoint comes
    with a later message) are checkpointed on SIGTERM and their offsets committed, so a restart starts there."""
    capture = disordered_capture(sample_capture, tmp_path / "capture.json", copies=200)
    worker = WebWorker(kafka_settings, tmp_path / "worker")
    try:
        await worker.wait_ready()
        last = await ingest_open_input(kafka_settings, capture, idempotent=False)

        async def applied() -> bool:
            return value(await worker.metrics(), "tailwatch_batch_processing_seconds_count") >= sum(
                offset + 1 for offset in last.values())

        await wait_for(applied, 60, "the worker to apply every message")
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(STOP_TIMEOUT_S) == 0
    finally:
        worker.kill()
    [saved] = [orjson.loads(line)["fields"]["partitions"] for line in worker.log_text().splitlines()
               if '"checkpointed on stop"' in line]
    assert {int(p): offset for p, offset in saved.items()} == last
    assert await committed(kafka_settings, kafka_settings.logs_topic, f"{kafka_settings.topic_prefix}-metrics",
                           list(last)) == {p: offset + 1 for p, offset in last.items()}


async def committed(settings: KafkaSettings, topic: str, group: str, partitions: list[int]) -> dict[int, int | None]:
    """The consumer group's committed offsets (the next message it reads after a restart)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
    finally:
        await consumer.stop()


async def test_a_stopped_notifier_finishes_the_send_in_flight(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    """SIGTERM while a Slack message is in flight: the notifier waits for the answer, records the delivery and
    acknowledges its alert, and the offsets are committed as it stops: a restart reads none of them again."""
    events: list[dict[str, Any] | bytes] = [alert_event(endpoint=f"/api/e{i}", channels=["slack-critical"])
                                            for i in range(4)]
    positions = await publish(kafka_settings, events)
    with HttpReceiver() as http:
        http.program(SLACK_SECRET_PATH, *[Reply(delay_s=0.1)] * 3, Reply(delay_s=2.0))
        channels = channel_file(tmp_path)
        notifier = start(kafka_settings, channels, channel_env(http, None), tmp_path)
        try:
            await http.wait_for_async(4, path=SLACK_SECRET_PATH, timeout_s=90)  # the fourth is held for 2 s
            notifier.process.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(notifier.process.wait, STOP_TIMEOUT_S) == 0
        finally:
            notifier.stop()
        assert all(request.answered for request in http.requests(SLACK_SECRET_PATH))
        assert '"notifier stopped"' in notifier.stderr
        ledger = await ledger_deliveries(kafka_settings)
        assert sorted(d.key for d in ledger) == sorted(keys_of(http.requests(SLACK_SECRET_PATH)))
        assert len(ledger) == 4
    assert await committed(kafka_settings, kafka_settings.topic("alerts"), f"{kafka_settings.topic_prefix}-notifier",
                           list(positions)) == positions


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_ingest_stops_its_wrangler_tail_and_broker(signum: int, tmp_path: Path) -> None:
    """`ingest --wrangler` (here a fake wrangler that prints nothing and waits) on the embedded broker: a killed
    ingest does not leave `wrangler tail` waiting for events forever, nor the broker."""
    script = tmp_path / "wrangler"
    script.write_text(FAKE_WRANGLER)
    script.chmod(0o755)
    (tmp_path / "state").mkdir()
    parent = Parent(tmp_path / "ingest.log", "ingest", "--wrangler", "gateway",
                    env={"TAILWATCH_WRANGLER": str(script), "FAKE_WRANGLER_DIR": str(tmp_path / "state")})
    try:
        parent.wait_for("embedded broker started", "wrangler tail started")
        stop_and_check(parent, signum, [parent.broker_port()], children_count=2)
    finally:
        parent.close()


def test_the_embedded_brokers_output_goes_to_a_private_directory(tmp_path: Path) -> None:
    broker = EmbeddedBroker()
    with broker:
        log = broker.log_path
        assert log is not None and log.exists()
        assert str(broker.port) not in str(log)  # not a path another user can guess and create first
        assert log.parent.stat().st_mode & 0o777 == 0o700
        assert log.parent.stat().st_uid == os.getuid()
    assert not log.parent.exists()  # removed with it


@pytest.mark.kafka
async def test_a_worker_stopped_by_sigterm_resumes_where_it_stopped(apache_kafka: Any, sample_capture: Path,
                                                                    tmp_path: Path) -> None:
    """On Apache Kafka (the embedded broker cannot recover changelogs): a worker stopped by SIGTERM mid-input
    and started again restores every partition at the last message it had applied, so it reads and sends
    nothing twice."""
    settings = KafkaSettings(apache_kafka.bootstrap, f"s{int(time.time() * 1000) % 10**9}", 4, 1)
    capture = disordered_capture(sample_capture, tmp_path / "capture.json", copies=200)
    first = WebWorker(settings, tmp_path / "first", app_id="resume")
    try:
        await first.wait_ready(120)
        last = await ingest_open_input(settings, capture)

        async def applied() -> bool:
            return value(await first.metrics(), "tailwatch_batch_processing_seconds_count") >= sum(
                offset + 1 for offset in last.values())

        await wait_for(applied, 60, "the worker to apply every message")
        first.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(first.process.wait, STOP_TIMEOUT_S) == 0
    finally:
        first.kill()
    second = WebWorker(settings, tmp_path / "second", app_id="resume")
    try:
        await second.wait_ready(120)

        async def restored() -> bool:
            return len(restored_offsets(second.log_text())) == len(last)

        await wait_for(restored, 60, "every partition's state to be restored")
        assert restored_offsets(second.log_text()) == last
        assert value(await second.metrics(), "tailwatch_batch_processing_seconds_count") == 0  # nothing read again
    finally:
        second.kill()


def restored_offsets(log: str) -> dict[int, int]:
    return {fields["partition"]: fields["offset"] for fields in
            (orjson.loads(line)["fields"] for line in log.splitlines() if '"partition state restored"' in line)}


async def ingest_open_input(settings: KafkaSettings, capture: Path, idempotent: bool | None = None) -> dict[int, int]:
    """Publish the capture without its final batch (the input stays open); the last offset per partition."""
    bootstrap = settings.bootstrap or ""
    await ensure_topics(bootstrap, log_topic_specs(settings))
    publisher = Publisher(bootstrap, settings.logs_topic, settings.deadletter_topic, idempotent=idempotent)
    await publisher.start()
    try:
        await Ingestor(publisher, settings.partitions).ingest_chunks(str(capture), file_chunks(capture),
                                                                     stream="files", final=False)
    finally:
        await publisher.stop()
    logs = await read_topic(bootstrap, settings.logs_topic)
    return {m.partition: max(n.offset for n in logs if n.partition == m.partition) for m in logs}
