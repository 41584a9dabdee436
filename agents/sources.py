"""Input sources as chunks of bytes: files (plain or `.gz`, by magic bytes), stdin."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
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
