"""The pieces a `TailFramer` cuts wrangler output into — frames, noise, broken pieces, records made on its fast
path — and the helpers they are made with: excerpts, orjson decoding with UTF-8 and surrogate repair, lazy line
numbers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson

EXCERPT_BYTES = 512
_NEWLINE = 0x0A
_CLOSE = 0x7D  # }
SCAN_BYTES = 1 << 20  # buffers scanned whole for newlines (see `Lines`)

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


# A `\uD800`-`\uDFFF` escape: a high one with the low one that may follow it, or a low one; group 1/4 is the run of
# backslashes before the `u` (odd: an escape; even: escaped backslashes, then a plain `u`).
_SURROGATE_ESCAPE = re.compile(
    rb"(\\+)u([dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?|(\\+)u[dD][c-fC-F][0-9a-fA-F]{2}")
_REPLACEMENT_ESCAPE = b"\\ufffd"


def _surrogate_fix(match: re.Match[bytes]) -> bytes:
    high_run, high, low, low_run = match.groups()
    if high_run is not None:
        if len(high_run) % 2 == 0:  # `\\ud83d` is a backslash and the text `ud83d`; a low escape after it is lone
            return high_run + b"u" + high + (_REPLACEMENT_ESCAPE if low else b"")
        return match.group(0) if low else high_run[:-1] + _REPLACEMENT_ESCAPE
    if len(low_run) % 2 == 0:
        return match.group(0)
    return low_run[:-1] + _REPLACEMENT_ESCAPE


def repair_surrogate_escapes(raw: bytes) -> bytes:
    """JSON text with every lone UTF-16 surrogate escape (`"ok \\ud83d"`: what JavaScript's JSON.stringify writes for
    an emoji cut in half) replaced by `\\ufffd`; pairs and escaped backslashes are left as they are. orjson (and
    msgspec) reject lone surrogates; call this only when `has_surrogate_escape` says there may be one."""
    return _SURROGATE_ESCAPE.sub(_surrogate_fix, raw)


def has_surrogate_escape(raw: bytes | str) -> bool:
    """A cheap test that must hold for any lone surrogate escape: `\\ud` or `\\uD` somewhere in the text."""
    if isinstance(raw, str):
        return "\\ud" in raw or "\\uD" in raw
    return b"\\ud" in raw or b"\\uD" in raw


_INFINITE_NUMBER = "number is infinity"  # the start of orjson's error for a number past the double range
_INT_RANGE = (-(2**63), 2**64 - 1)  # the integers orjson reads as int; it reads others as float


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _int_as_orjson(text: str) -> int | float:
    if len(text) > 20:
        return float(text)
    value = int(text)
    return value if _INT_RANGE[0] <= value <= _INT_RANGE[1] else float(value)


def loads_json(raw: bytes) -> Any:
    """orjson's decode, except that a number past the double range is read as an infinity (as JavaScript's
    JSON.parse reads it) instead of failing the whole text: an event with such a number in a field no record reads
    is still an event (the extraction fast path skips those fields unread, and must agree). Raises orjson's error
    for everything else."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if not str(error).startswith(_INFINITE_NUMBER) or has_surrogate_escape(raw):
            raise
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_int=_int_as_orjson)
        except (ValueError, RecursionError):  # not JSON after all, or nested too deeply: orjson's reason stands
            raise error from None


def decode_object(raw: bytes) -> tuple[dict[str, Any] | None, bool, str]:
    """orjson-decode one object (`loads_json`); on invalid UTF-8 or a lone surrogate escape, retry with replacement
    characters.

    Returns (object or None, repaired, error text).
    """
    try:
        value = loads_json(raw)
        repaired = False
    except orjson.JSONDecodeError as error:
        first_error = str(error)
        fixed = raw
        try:
            fixed.decode("utf-8")
        except UnicodeDecodeError:
            fixed = raw.decode("utf-8", errors="replace").encode("utf-8")
        if has_surrogate_escape(fixed):
            fixed = repair_surrogate_escapes(fixed)
        if fixed == raw:
            return None, False, first_error
        try:
            value = loads_json(fixed)
            repaired = True
        except orjson.JSONDecodeError as second:
            return None, False, str(second)
    if not isinstance(value, dict):
        return None, repaired, f"top-level value is a JSON {type(value).__name__}, not an object"
    return value, repaired, ""


class Lines:
    """Line numbers of one buffer's positions. A buffer of up to `SCAN_BYTES` (the parser's slices, and what is left
    of the previous one) is scanned once, by numpy, for its newlines when first asked (`closes` gives the framer the
    pretty-object closes among them); a larger one (an object spanning many slices) is counted with `bytes.count`,
    so the positions array never holds more than `SCAN_BYTES` entries. `base` is the stream offset of buf[0]."""

    __slots__ = ("_ascii", "_closes", "_newlines", "base", "buf", "line")

    def __init__(self, buf: bytes, line: int, base: int) -> None:
        self.buf = buf
        self.line = line  # the line of buf[0]
        self.base = base
        self._newlines: np.ndarray | None = None
        self._closes: list[int] | None = None
        self._ascii: bool | None = None

    @property
    def scanned(self) -> bool:
        """Whether the buffer is small enough to be scanned whole (`closes`)."""
        return len(self.buf) <= SCAN_BYTES

    def _newline_positions(self) -> np.ndarray:
        if self._newlines is None:
            self._newlines = np.flatnonzero(np.frombuffer(self.buf, np.uint8) == _NEWLINE)
        return self._newlines

    def ascii(self) -> bool:
        """Whether the buffer is all ASCII (so valid UTF-8), checked once."""
        if self._ascii is None:
            self._ascii = self.buf.isascii()
        return self._ascii

    def closes(self) -> list[int]:
        """The positions of every `\\n}` in a scanned buffer (each line that starts with `}`), ascending; found
        once."""
        if self._closes is None:
            newlines = self._newline_positions()
            data = np.frombuffer(self.buf, np.uint8)
            if len(newlines) and newlines[-1] == len(data) - 1:
                newlines = newlines[:-1]
            self._closes = newlines[data[newlines + 1] == _CLOSE].tolist()
        return self._closes

    def at(self, pos: int) -> int:
        if not self.scanned:
            return self.line + self.buf.count(b"\n", 0, pos)
        return self.line + int(np.searchsorted(self._newline_positions(), pos))

    def line_of(self, offset: int) -> int:
        return self.at(offset - self.base)


class Extracted:
    """Records a `fast` hook made from consecutive frames of the fast path, in their order (one per frame)."""

    __slots__ = ("records",)

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records


FastHook = Callable[[memoryview, bool], dict[str, Any] | None]  # (an object's JSON text, known ASCII) -> record
Piece = Frame | Noise | Broken | Extracted


