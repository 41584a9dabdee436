"""Input sources as chunks of bytes: files (plain or `.gz`, by magic bytes), stdin."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from agents.gunzip import GZIP_MAGIC, Gunzip, InputDamage
from pipeline.parsing import ParseStats

if TYPE_CHECKING:
    import asyncio

CHUNK_BYTES = 1 << 20


class CaptureChunks:
    """The bytes of one capture (a file, or `-` for stdin) in chunks, gunzipped when it starts with gzip's magic
    bytes (recognized by content, not by name). Damaged gzip data ends the chunks early, with everything that
    decompressed before it, and sets `damage` (offset in the compressed input, reason) instead of raising."""

    def __init__(self, path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = path
        self.chunk_bytes = chunk_bytes
        self.damage: InputDamage | None = None

    def __iter__(self) -> Iterator[bytes]:
        if self.path == "-":
            yield from self._chunks(sys.stdin.buffer)
            return
        with open(self.path, "rb") as handle:
            yield from self._chunks(handle)

    def _chunks(self, handle: BinaryIO) -> Iterator[bytes]:
        # stdin: what has arrived (a pipe); a file: whole chunks
        read = handle.read1 if self.path == "-" and hasattr(handle, "read1") else handle.read
        first = read(self.chunk_bytes)
        while 0 < len(first) < 2 and (more := read(self.chunk_bytes)):  # the magic bytes may come one by one
            first += more
        if not first.startswith(GZIP_MAGIC):
            chunk = first
            while chunk:
                yield chunk
                chunk = read(self.chunk_bytes)
            return
        gunzip = Gunzip()
        chunk = first
        while chunk and gunzip.damage is None:
            if data := gunzip.feed(chunk):
                yield data
            chunk = read(self.chunk_bytes)
        gunzip.finish()
        self.damage = gunzip.damage


def damage_of(chunks: object) -> InputDamage | None:
    """Where reading `chunks` stopped at damaged input, if it is a `CaptureChunks` or `GunzipLive` that did."""
    return chunks.damage if isinstance(chunks, CaptureChunks | GunzipLive) else None


def report_input_problems(command: str, stats: ParseStats) -> int:
    """Print the warnings of inputs that held no wrangler event or were damaged (stderr); 2 when there were any
    (the exit status of an input error), else 0."""
    for text in stats.warnings:
        print(f"tailwatch {command}: warning: {text}", file=sys.stderr)
    return 2 if stats.incomplete else 0


def file_chunks(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> CaptureChunks:
    return CaptureChunks(path, chunk_bytes)


def source_name(path: str) -> str:
    return "stdin" if path == "-" else path


def chunks_of(path: str, chunk_bytes: int = CHUNK_BYTES) -> CaptureChunks:
    """`-` is stdin; anything else a file path."""
    return CaptureChunks(path, chunk_bytes)


def stdin_is_live() -> bool:
    """stdin is a pipe, a socket or a terminal (`wrangler tail … | tailwatch ingest --stdin`), not a file."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return not stat.S_ISREG(mode)


async def stdin_reader() -> asyncio.StreamReader:
    """An asyncio reader on stdin (a pipe or a terminal)."""
    import asyncio  # noqa: PLC0415  # only a live stdin needs it; file commands start without asyncio

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=CHUNK_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    return reader


class GunzipLive:
    """Live chunks passed through, decompressed as they come when the stream starts with gzip's magic bytes
    (concatenated members too). `None` (the linger tick) passes as is. Damaged gzip data ends the stream there
    (what came before it is kept) and sets `damage`, as `CaptureChunks` does."""

    def __init__(self, chunks: AsyncIterator[bytes | None]) -> None:
        self._chunks = chunks
        self.damage: InputDamage | None = None

    async def __aiter__(self) -> AsyncIterator[bytes | None]:
        gunzip: Gunzip | None = None
        first = True
        async for chunk in self._chunks:
            if chunk is None:
                yield None
                continue
            if first:
                first = False
                if chunk.startswith(GZIP_MAGIC):
                    gunzip = Gunzip()
            if gunzip is None:
                yield chunk
                continue
            if data := gunzip.feed(chunk):
                yield data
            if gunzip.damage is not None:
                break
        if gunzip is not None:
            gunzip.finish()
            self.damage = gunzip.damage


def gunzip_live(chunks: AsyncIterator[bytes | None]) -> GunzipLive:
    return GunzipLive(chunks)
