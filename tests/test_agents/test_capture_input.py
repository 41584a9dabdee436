"""Captures as users have them: damaged `.gz` files keep what came before the damage and say where it is; files with
no wrangler event and files in UTF-16 are told apart; no traceback, exit 2 for input errors."""

from __future__ import annotations

import codecs
import gzip
import os
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from agents.commands.ingest import log_topic_specs
from agents.gunzip import Gunzip
from agents.ingest import IngestConfig, Ingestor
from agents.publisher import Publisher
from agents.settings import KafkaSettings
from agents.sources import CaptureChunks, file_chunks, gunzip_live
from agents.topics import ensure_topics
from pipeline.parsing import LogParser
from schemas.deadletter import DeadLetter
from tests.support import read_topic, records_of_batches


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], input=stdin, capture_output=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "TAILWATCH_KAFKA_BOOTSTRAP"})


def zcat_prefix(data: bytes) -> bytes:
    """Everything zlib can decompress of (possibly damaged) gzip data fed in one go: what `zcat` recovers."""
    out, rest = [], data
    while rest:
        decompressor = zlib.decompressobj(wbits=31)
        try:
            out.append(decompressor.decompress(rest))
        except zlib.error:
            break
        rest = decompressor.unused_data if decompressor.eof else b""
    return b"".join(out)


@pytest.fixture
def big_capture(sample_capture: Path) -> bytes:
    return sample_capture.read_bytes() * 60  # ~720 events: several gzip blocks


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.97])
def test_a_truncated_gz_gives_everything_before_the_cut_and_its_offset(big_capture: bytes, tmp_path: Path,
                                                                       fraction: float) -> None:
    packed = gzip.compress(big_capture)
    cut = int(len(packed) * fraction)
    path = tmp_path / "capture.json.gz"
    path.write_bytes(packed[:cut])
    chunks = CaptureChunks(path, chunk_bytes=4096)
    assert b"".join(chunks) == zcat_prefix(packed[:cut])
    assert chunks.damage is not None and chunks.damage.offset == cut
    assert "ends early" in chunks.damage.reason


def test_corrupt_gz_data_is_located_and_what_came_before_is_kept(big_capture: bytes) -> None:
    packed = bytearray(gzip.compress(big_capture, mtime=0))
    packed[10:14] = b"\xff\xff\xff\xff"  # the start of the deflate data: an invalid block type
    gunzip = Gunzip()
    out = gunzip.feed(bytes(packed))
    gunzip.finish()
    assert out == zcat_prefix(bytes(packed))
    assert gunzip.damage is not None and 10 <= gunzip.damage.offset <= 14
    assert gunzip.damage.reason.startswith("corrupt gzip data")


def test_concatenated_members_and_nul_padding_are_no_damage(sample_capture: Path, tmp_path: Path) -> None:
    body = sample_capture.read_bytes()
    path = tmp_path / "joined.gz"
    path.write_bytes(gzip.compress(body) + gzip.compress(body) + b"\0" * 512)
    chunks = file_chunks(path, chunk_bytes=7)
    assert b"".join(chunks) == body + body and chunks.damage is None


def test_cli_parse_of_a_truncated_gz_keeps_the_records_and_exits_2(big_capture: bytes, tmp_path: Path) -> None:
    packed = gzip.compress(big_capture)
    path = tmp_path / "capture.json.gz"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    piped = cli("parse", "-", stdin=zcat_prefix(path.read_bytes()))
    result = cli("parse", str(path))
    assert result.returncode == 2 and b"Traceback" not in result.stderr
    assert result.stdout == piped.stdout and result.stdout.count(b"\n") > 100
    assert f"input damaged at byte {path.stat().st_size}".encode() in result.stderr
    assert b"damaged_inputs=1" in result.stderr
    from_stdin = cli("parse", "-", stdin=path.read_bytes())  # a .gz on stdin: the same
    assert (from_stdin.returncode, from_stdin.stdout) == (2, result.stdout)


@pytest.mark.parametrize("command", ["replay", "report"])
def test_cli_replay_and_report_of_a_truncated_gz_exit_2_without_traceback(big_capture: bytes, tmp_path: Path,
                                                                          command: str) -> None:
    packed = gzip.compress(big_capture)
    path = tmp_path / "capture.json.gz"
    path.write_bytes(packed[: len(packed) // 2])
    extra = ["--metrics"] if command == "replay" else ["--json", "--no-rules"]
    result = cli(command, str(path), *extra)
    assert result.returncode == 2, result.stderr
    assert b"Traceback" not in result.stderr and b"input damaged at byte" in result.stderr
    assert result.stdout  # the panes of the records before the damage


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (b"", b"found an empty input"),
        (bytes(range(256)) * 40, b"found binary data"),
        (b"just some notes\nnothing else\n", b"found text with no JSON object"),
    ],
    ids=["empty", "binary", "text"],
)
def test_cli_parse_of_a_file_with_no_event_warns_and_exits_2(tmp_path: Path, content: bytes, found: bytes) -> None:
    path = tmp_path / "not-a-capture"
    path.write_bytes(content)
    result = cli("parse", str(path))
    assert result.returncode == 2 and result.stdout == b"" and b"Traceback" not in result.stderr
    assert b"tailwatch parse: warning: " + str(path).encode() + b": no wrangler tail events; " + found in \
        result.stderr


def test_cli_parse_of_a_powershell_capture_reads_like_utf8(sample_capture: Path, tmp_path: Path) -> None:
    text = sample_capture.read_text(encoding="utf-8")
    path = tmp_path / "capture-ps.json"
    path.write_bytes(codecs.BOM_UTF16_LE + text.replace("\n", "\r\n").encode("utf-16-le"))
    want = cli("parse", str(sample_capture))
    got = cli("parse", str(path))
    assert got.returncode == 0, got.stderr
    assert got.stdout == want.stdout and got.stdout.count(b"\n") == 11


@pytest.mark.integration
async def test_ingest_of_a_truncated_gz_publishes_the_records_and_a_dead_letter(
        kafka_settings: KafkaSettings, big_capture: bytes, tmp_path: Path) -> None:
    packed = gzip.compress(big_capture)
    path = tmp_path / "capture.json.gz"
    path.write_bytes(packed[: len(packed) // 2])
    expected = LogParser("x")
    prefix = zcat_prefix(path.read_bytes())
    want = expected.feed(prefix).records + expected.finish().records
    bootstrap = kafka_settings.bootstrap
    assert bootstrap
    await ensure_topics(bootstrap, log_topic_specs(kafka_settings))
    publisher = Publisher(bootstrap, kafka_settings.logs_topic, kafka_settings.deadletter_topic, idempotent=False)
    await publisher.start()
    ingestor = Ingestor(publisher, kafka_settings.partitions, IngestConfig(batch_records=50))
    stats = await ingestor.ingest_chunks(str(path), file_chunks(path, chunk_bytes=4096))
    await publisher.stop()
    assert stats.records == len(want) > 100 and stats.damaged_inputs == 1
    messages = await read_topic(bootstrap, kafka_settings.logs_topic, until=publisher.batches_sent)
    received = records_of_batches(messages, kafka_settings.partitions, max_records=50)
    assert sorted(r["request_id"] or "" for r in received) == sorted(r["request_id"] or "" for r in want)
    letters = await read_topic(bootstrap, kafka_settings.deadletter_topic, until=publisher.dead_letters_sent)
    kinds = {DeadLetter.model_validate(m.value).kind: m.value for m in letters}
    assert kinds["damaged_input"]["offset"] == path.stat().st_size
    assert orjson.loads(orjson.dumps(kinds["damaged_input"]))["source"] == str(path)


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes | None]:
    for start in range(0, len(data), size):
        yield data[start:start + size]
        yield None  # a linger tick between chunks passes through


@pytest.mark.integration
async def test_ingest_of_a_damaged_gz_pipe_publishes_what_came_before(kafka_settings: KafkaSettings,
                                                                      big_capture: bytes) -> None:
    packed = gzip.compress(big_capture)
    cut = packed[: len(packed) // 3]
    live = gunzip_live(pieces(cut, 1000))
    bootstrap = kafka_settings.bootstrap
    assert bootstrap
    await ensure_topics(bootstrap, log_topic_specs(kafka_settings))
    publisher = Publisher(bootstrap, kafka_settings.logs_topic, kafka_settings.deadletter_topic, idempotent=False)
    await publisher.start()
    ingestor = Ingestor(publisher, kafka_settings.partitions, IngestConfig(batch_records=50))
    stats = await ingestor.ingest_stream("stdin", live, final=lambda: True)
    await publisher.stop()
    expected = LogParser("x")
    want = expected.feed(zcat_prefix(cut)).records + expected.finish().records
    assert live.damage is not None and live.damage.offset == len(cut)
    assert stats.records == len(want) > 50 and stats.damaged_inputs == 1
    assert publisher.records_sent == len(want)
