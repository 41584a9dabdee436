"""The pieces a `TailFramer` cuts wrangler output into — frames, noise, broken pieces, records made on its fast
path — and the helpers they are made with: excerpts, orjson decoding with UTF-8 repair, lazy line numbers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

EXCERPT_BYTES = 512

NoiseKind = Literal["blank", "text", "json_string"]


class Frame:
    """A decoded top-level JSON object, its byte offset, and its 1-based line (counted only when asked for)."""

    __slots__ = ("_lines", "obj", "offset", "repaired_utf8")

    def __init__(self, obj: dict[str, Any], offset: int, lines: Lines, repaired_utf8: bool = False) -> None:
        self.obj = obj
        self.offset = offset
        self.repaired_utf8 = repaired_utf8
        self._lines = lines

    @property
    def line(self) -> int:
        return self._lines.line_of(self.offset)

    def __repr__(self) -> str:
        return f"Frame(line={self.line}, offset={self.offset}, repaired_utf8={self.repaired_utf8})"


@dataclass(frozen=True, slots=True)
class Noise:
    """A line that is not JSON objects: a banner, a usage notice, wrangler's give-up string, a blank line."""

    kind: NoiseKind
    text: str
    line: int
    offset: int


@dataclass(frozen=True, slots=True)
class Broken:
    """A piece of input that could not become an object: it costs only itself."""

    kind: Literal["malformed_json", "truncated_object", "oversized_object", "not_an_event"]
    reason: str
    excerpt: str
    line: int
    offset: int



def excerpt_of(raw: bytes | str) -> str:
    """The first EXCERPT_BYTES bytes as text, invalid UTF-8 replaced (a str may carry surrogate escapes)."""
    if isinstance(raw, bytes):
        return raw[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    try:
        head = raw[:EXCERPT_BYTES].encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        head = raw[:EXCERPT_BYTES].encode("utf-8", errors="replace")
    return head[:EXCERPT_BYTES].decode("utf-8", errors="replace")


def decode_object(raw: bytes) -> tuple[dict[str, Any] | None, bool, str]:
    """orjson-decode one object; on invalid UTF-8, retry with replacement characters.

    Returns (object or None, repaired, error text).
    """
    try:
        value = orjson.loads(raw)
        repaired = False
    except orjson.JSONDecodeError as error:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            try:
                value = orjson.loads(raw.decode("utf-8", errors="replace"))
                repaired = True
            except orjson.JSONDecodeError as second:
                return None, False, str(second)
        else:
            del text
            return None, False, str(error)
    if not isinstance(value, dict):
        return None, repaired, f"top-level value is a JSON {type(value).__name__}, not an object"
    return value, repaired, ""


class Lines:
    """Line numbers of one buffer's positions, counted lazily: forward from the last position asked for (each byte
    once, in order), or back from it for a frame whose line is asked for late. `base` is the stream offset of
    buf[0]."""

    __slots__ = ("base", "buf", "line", "upto")

    def __init__(self, buf: bytes, line: int, base: int) -> None:
        self.buf = buf
        self.line = line
        self.upto = 0
        self.base = base

    def at(self, pos: int) -> int:
        if pos > self.upto:
            self.line += self.buf.count(b"\n", self.upto, pos)
            self.upto = pos
        elif pos < self.upto:
            self.line -= self.buf.count(b"\n", pos, self.upto)
            self.upto = pos
        return self.line

    def line_of(self, offset: int) -> int:
        return self.at(offset - self.base)


class Extracted:
    """Records a `fast` hook made from consecutive frames of the fast path, in their order (one per frame)."""

    __slots__ = ("records",)

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records


FastHook = Callable[[dict[str, Any]], dict[str, Any] | None]
Piece = Frame | Noise | Broken | Extracted


