"""Input sources as chunks of bytes: files (plain or `.gz`, by magic bytes), stdin."""

from __future__ import annotations

import asyncio
import gzip
import os
import stat
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK_BYTES = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


def open_capture(path: str | Path) -> BinaryIO:
    """Open a capture for reading bytes; gzip files are recognized by content, not by name."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def file_chunks(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    with open_capture(path) as handle:
        while chunk := handle.read(chunk_bytes):
            yield chunk


def stdin_chunks(chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    stream = sys.stdin.buffer
    head = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
    handle: BinaryIO = gzip.GzipFile(fileobj=stream, mode="rb") if head == _GZIP_MAGIC else stream  # type: ignore[assignment]
    while chunk := handle.read1(chunk_bytes) if hasattr(handle, "read1") else handle.read(chunk_bytes):
        yield chunk


def source_name(path: str) -> str:
    return "stdin" if path == "-" else path


def chunks_of(path: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """`-` is stdin; anything else a file path."""
    return stdin_chunks(chunk_bytes) if path == "-" else file_chunks(path, chunk_bytes)


def stdin_is_live() -> bool:
    """stdin is a pipe, a socket or a terminal (`wrangler tail … | tailwatch ingest --stdin`), not a file."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return not stat.S_ISREG(mode)


async def stdin_reader() -> asyncio.StreamReader:
    """An asyncio reader on stdin (a pipe or a terminal)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=CHUNK_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    return reader


async def gunzip_live(chunks: AsyncIterator[bytes | None]) -> AsyncIterator[bytes | None]:
    """Pass chunks through, decompressing them as they come when the stream starts with gzip's magic bytes
    (concatenated members too). `None` (the linger tick) passes as is."""
    decompressor: zlib._Decompress | None = None
    first = True
    async for chunk in chunks:
        if chunk is None:
            yield None
            continue
        if first:
            first = False
            if chunk.startswith(_GZIP_MAGIC):
                decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        if decompressor is None:
            yield chunk
            continue
        out, rest = [], chunk
        while rest:
            out.append(decompressor.decompress(rest))
            rest = decompressor.unused_data
            if decompressor.eof:
                decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        if data := b"".join(out):
            yield data
