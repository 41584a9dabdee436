"""Framing of wrangler output into top-level JSON objects, incrementally, from bytes.

Handles every layout seen in captures: wrangler's pretty-printed objects (4-space indent since 4.24.4, 2-space
before), compact objects with or without newlines between them, and JSON Lines. Feed chunks of any size; the
framer holds at most one object (bounded by `max_object_bytes`) plus one chunk.

Layout facts it relies on (see shared/research/wrangler-tail-format.md): a pretty top-level object starts with
a line that is exactly `{` and ends with a line that starts with `}`; every nested line is indented. So a line at
column 0 that starts with `{` always starts a new top-level object, and one that is not `{` or blank is noise.

Each frame, piece of noise and rejected piece carries the 1-based line and the byte offset where it starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import orjson

DEFAULT_MAX_OBJECT_BYTES = 8 * 1024 * 1024
EXCERPT_BYTES = 512

NoiseKind = Literal["blank", "text", "json_string"]


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded top-level JSON object."""

    obj: dict[str, Any]
    line: int
    offset: int
    repaired_utf8: bool = False


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


Piece = Frame | Noise | Broken

_WS = b" \t\r"
_OPEN = 0x7B  # {
_DECODER = json.JSONDecoder()


def excerpt_of(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        raw = raw[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    return raw[:EXCERPT_BYTES]


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


class _Lines:
    """Counts lines lazily as positions advance, so each byte is counted once."""

    __slots__ = ("buf", "line", "upto")

    def __init__(self, buf: bytes, line: int) -> None:
        self.buf = buf
        self.line = line
        self.upto = 0

    def at(self, pos: int) -> int:
        if pos > self.upto:
            self.line += self.buf.count(b"\n", self.upto, pos)
            self.upto = pos
        return self.line


class TailFramer:
    """Incremental framer: `feed(chunk)` and, at the end of input, `finish()`; each returns the pieces found."""

    def __init__(self, max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES) -> None:
        if max_object_bytes < 1024:
            raise ValueError("max_object_bytes must be at least 1024")
        self.max_object_bytes = max_object_bytes
        self._buf = b""
        self._offset = 0  # stream offset of _buf[0]
        self._line = 1  # line number at _buf[0]
        self._skip_object = False  # discarding an oversized pretty object up to its close
        self._skip_line = False  # discarding an oversized compact line up to its newline
        self._out: list[Piece] = []
        self._lines = _Lines(b"", 1)

    def feed(self, chunk: bytes) -> list[Piece]:
        self._buf = self._buf + chunk if self._buf else bytes(chunk)
        return self._drain(final=False)

    def finish(self) -> list[Piece]:
        return self._drain(final=True)

    # -- internals ------------------------------------------------------------------------------------------

    def _drain(self, final: bool) -> list[Piece]:
        buf = self._buf
        n = len(buf)
        self._out = []
        self._lines = _Lines(buf, self._line)
        pos = 0
        while pos < n:
            nxt = self._step(buf, pos, final)
            if nxt is None:
                break
            pos = min(nxt, n)
        self._line = self._lines.at(pos)
        self._offset += pos
        self._buf = buf[pos:]
        out, self._out = self._out, []
        return out

    def _broken(self, kind: Any, reason: str, raw: bytes | str, pos: int) -> None:
        self._out.append(Broken(kind, reason, excerpt_of(raw), self._lines.at(pos), self._offset + pos))

    def _frame(self, obj: dict[str, Any], pos: int, repaired: bool) -> None:
        self._out.append(Frame(obj, self._lines.at(pos), self._offset + pos, repaired))

    def _step(self, buf: bytes, pos: int, final: bool) -> int | None:
        """Consume one piece at `pos` (a line start). Returns where to go on, or None when more input is needed."""
        if self._skip_object:
            return self._skip_oversized(buf, pos, final)
        n = len(buf)
        eol = buf.find(b"\n", pos)
        if self._skip_line:
            self._skip_line = eol < 0 and not final
            return n if eol < 0 else eol + 1
        if eol < 0:
            if not final:
                if n - pos <= self.max_object_bytes:
                    return None
                return self._split_compact(buf, pos, n, final=False)
            eol = n
        first = buf[pos]
        content = buf[pos:eol].strip(_WS)
        if content[:1] == b"{" and (first == _OPEN or content != b"{"):
            if content == b"{":
                return self._pretty(buf, pos, final)
            if len(content) > self.max_object_bytes:
                self._broken("oversized_object", f"line longer than {self.max_object_bytes} bytes", content, pos)
                return eol + 1
            obj, repaired, _error = decode_object(content)
            if obj is not None:
                self._frame(obj, pos, repaired)
                return eol + 1
            return self._split_compact(buf, pos, eol, final=True)
        if not content:
            self._out.append(Noise("blank", "", self._lines.at(pos), self._offset + pos))
            return eol + 1
        if first in _WS or content[:1] in (b"}", b"]", b"{"):
            return self._debris(buf, pos, final)
        kind: NoiseKind = "json_string" if content[:1] == b'"' else "text"
        self._out.append(Noise(kind, excerpt_of(content), self._lines.at(pos), self._offset + pos))
        return eol + 1

    def _pretty(self, buf: bytes, pos: int, final: bool) -> int | None:
        """A pretty object whose first line is `{`."""
        n = len(buf)
        close = buf.find(b"\n}", pos)
        restart = buf.find(b"\n{", pos, close if close >= 0 else n)
        if restart >= 0:
            self._broken("truncated_object", "object cut off: a new object starts before it closes",
                         buf[pos:restart], pos)
            return restart + 1
        if close < 0:
            if final:
                self._broken("truncated_object", "object cut off at the end of input", buf[pos:], pos)
                return n
            if n - pos > self.max_object_bytes:
                self._broken("oversized_object", f"object larger than {self.max_object_bytes} bytes",
                             buf[pos:], pos)
                self._skip_object = True
                return self._skip_oversized(buf, pos + 1, final)
            return None
        end = close + 2
        eol = buf.find(b"\n", end)
        if eol < 0 and not final and not buf[end:].strip(_WS):
            return None  # the close line may go on in the next chunk
        if end - pos > self.max_object_bytes:
            self._broken("oversized_object", f"object larger than {self.max_object_bytes} bytes",
                         buf[pos:end], pos)
        else:
            obj, repaired, error = decode_object(buf[pos:end])
            if obj is None:
                self._broken("malformed_json", error, buf[pos:end], pos)
            else:
                self._frame(obj, pos, repaired)
        if eol < 0:
            eol = n
        if buf[end:eol].strip(_WS):
            return end  # something follows the close on its line: `}{...}`
        return eol + 1

    def _skip_oversized(self, buf: bytes, pos: int, final: bool) -> int | None:
        """Discard an oversized object up to its closing line, or up to the next object's start."""
        n = len(buf)
        hits = [hit for hit in (buf.find(b"\n}", pos), buf.find(b"\n{", pos)) if hit >= 0]
        if not hits:
            if final:
                self._skip_object = False
                return n
            keep_from = n - 1  # a `\n` at the chunk's end may begin `\n}`
            return keep_from if keep_from > pos else None
        self._skip_object = False
        first = min(hits)
        if buf[first + 1] == _OPEN:
            return first + 1
        eol = buf.find(b"\n", first + 1)
        return n if eol < 0 else eol + 1

    def _debris(self, buf: bytes, pos: int, final: bool) -> int | None:
        """Lines outside any object that look like its inside: an object whose start is missing."""
        n = len(buf)
        restart = buf.find(b"\n{", pos)
        if restart < 0:
            if not final and n - pos <= self.max_object_bytes:
                return None
            end = n
        else:
            end = restart + 1
        self._broken("truncated_object", "object start missing: object lines outside any object", buf[pos:end], pos)
        return end

    def _split_compact(self, buf: bytes, pos: int, end: int, final: bool) -> int | None:
        """Slow path: a line with several compact objects, junk, or a cut object. Returns the next position."""
        text = buf[pos:end].decode("utf-8", errors="surrogateescape")
        size = len(text)
        i = 0
        while i < size:
            while i < size and text[i] in " \t\r\n":
                i += 1
            if i >= size:
                break
            at = pos + len(text[:i].encode("utf-8", errors="surrogateescape"))
            if text[i] != "{":
                nxt = text.find("{", i)
                stop = size if nxt < 0 else nxt
                self._broken("malformed_json", "text between objects", text[i:stop], at)
                i = stop
                continue
            try:
                value, j = _DECODER.raw_decode(text, i)
            except json.JSONDecodeError as error:
                nxt = text.find("{", i + 1)
                if nxt < 0 and not final:
                    if end - at <= self.max_object_bytes:
                        return at if at > pos else None
                    self._broken("oversized_object", f"line longer than {self.max_object_bytes} bytes",
                                 text[i:], at)
                    self._skip_line = True
                    return end
                stop = size if nxt < 0 else nxt
                self._broken("malformed_json", error.msg, text[i:stop], at)
                i = stop
                continue
            piece = text[i:j]
            if not isinstance(value, dict):
                self._broken("not_an_event", "top-level value is not an object", piece, at)
            else:
                repaired = False
                try:
                    piece.encode("utf-8")
                except UnicodeEncodeError:
                    raw = piece.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
                    value = _DECODER.decode(raw)
                    repaired = True
                self._frame(value, at, repaired)
            i = j
        return end + 1
