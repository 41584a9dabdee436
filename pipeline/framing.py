"""Framing of wrangler output into top-level JSON objects, incrementally, from bytes.

Handles every layout seen in captures: wrangler's pretty-printed objects (4-space indent since 4.24.4, 2-space
before), compact objects with or without newlines between them, and JSON Lines. Feed chunks of any size; the
framer holds at most one object (bounded by `max_object_bytes`) plus one chunk.

Layout facts it relies on (see shared/research/wrangler-tail-format.md): a pretty top-level object starts with
a line that is exactly `{` and ends with a line that starts with `}`; every nested line is indented. So a pretty
object is the text from its `{` line to the first line that starts with `}`; when that text does not parse, a line
inside it that starts with `{` starts a new object (the first was cut off). Outside objects, a line at column 0
that is not `{` or blank is noise.
Compact objects are found within their line; junk or a cut object there costs only itself (up to the next `{`).

A piece is decided from at most `max_object_bytes + 1` bytes from its start (or from its whole line when that is
shorter), never from where a chunk happens to end: the output does not depend on chunk sizes.

Each frame, piece of noise and rejected piece carries the 1-based line and the byte offset where it starts.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from typing import Any

import orjson

from pipeline.pieces import (
    EXCERPT_BYTES,
    Broken,
    Extracted,
    FastHook,
    Frame,
    Lines,
    Noise,
    NoiseKind,
    Piece,
    decode_object,
    excerpt_of,
)

DEFAULT_MAX_OBJECT_BYTES = 8 * 1024 * 1024
__all__ = ["DEFAULT_MAX_OBJECT_BYTES", "EXCERPT_BYTES", "Broken", "Extracted", "FastHook", "Frame", "Noise",
           "NoiseKind", "Piece", "TailFramer", "decode_object", "excerpt_of", "object_start_after"]
_WS = b" \t\r"
_OPEN = 0x7B  # {
_NEWLINE = 0x0A
_DECODER = json.JSONDecoder()
_LOOKAHEAD = 10  # bytes past a JSON error that settle it: the longest literal, `-Infinity`, has 9


def _restart(text: str, start: int, error_at: int) -> int:
    """Where the next object starts inside a broken one that failed at `error_at`: the first `{` after `start`,
    up to `error_at`, whose own parse gets past `error_at` (an object nested in the broken one would fail there
    too, or end before it). -1 when there is none."""
    brace = text.find("{", start + 1, error_at + 1)
    while brace >= 0:
        try:
            _value, end = _DECODER.raw_decode(text, brace)
        except json.JSONDecodeError as error:
            if error.pos > error_at or error.msg.startswith("Unterminated string"):
                return brace
        else:
            if end > error_at:
                return brace
        brace = text.find("{", brace + 1, error_at + 1)
    return -1


def object_start_after(data: bytes, pos: int) -> int:
    """Where the first pretty object that starts right after a pretty object's closing line (`}` then `{`) begins,
    at or after `pos`; -1 when there is none. Every framer state ends at such a point (each skip stops at a line
    that starts with `{` or `}`, and both lines are whole), so input cut there frames in two parts exactly as in
    one: the first part's pieces, then the second's read with `start_offset`/`start_line` of the cut."""
    hit = data.find(b"\n}\n{\n", max(pos - 1, 0))
    return -1 if hit < 0 else hit + 3


class TailFramer:
    """Incremental framer: `feed(chunk)` and, at the end of input, `finish()`; each returns the pieces found.

    Every decision looks at no more than `max_object_bytes + 1` bytes from the start of a piece (or at the end of
    its line, when that comes first), so the pieces, their lines and offsets do not depend on how input is chunked.
    """

    def __init__(self, max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES, start_offset: int = 0,
                 start_line: int = 1, fast: FastHook | None = None) -> None:
        """`start_offset` and `start_line`: where the input begins in a larger one (a part of a split capture).
        `fast`: called with each object of wrangler's own layout; the records it makes (None: it declines, the
        object stays a Frame) come out as `Extracted` pieces in place of their frames."""
        if max_object_bytes < 1024:
            raise ValueError("max_object_bytes must be at least 1024")
        self.max_object_bytes = max_object_bytes
        self._buf = b""
        self._offset = start_offset  # stream offset of _buf[0]
        self._line = start_line  # line number at _buf[0]
        self._skip_object = False  # discarding an oversized pretty object up to its close
        self._skip_debris = False  # discarding object lines outside any object, up to the next object's start
        self._skip_line = False  # discarding the rest of a line (after an oversized compact piece or noise line)
        self._in_line = False  # inside a line of compact objects (or the rest of a pretty object's close line)
        self._junk = False  # inside junk on such a line, discarding up to the next `{` or the line's end
        self._out: list[Piece] = []
        self._fast = fast
        self._lines = Lines(b"", 1, 0)

    def feed(self, chunk: bytes | memoryview) -> list[Piece]:
        self._buf = self._buf + chunk if self._buf else bytes(chunk)
        return self._drain(final=False)

    def finish(self) -> list[Piece]:
        return self._drain(final=True)

    # -- internals ------------------------------------------------------------------------------------------

    def _drain(self, final: bool) -> list[Piece]:
        buf = self._buf
        n = len(buf)
        self._out = []
        self._lines = Lines(buf, self._line, self._offset)
        pos = 0
        while pos < n:
            if buf[pos] == _OPEN and not (self._skip_object or self._skip_debris or self._skip_line
                                          or self._in_line):
                pos = self._pretty_run(buf, pos)
                if pos >= n:
                    break
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
        self._out.append(Frame(obj, self._offset + pos, self._lines, repaired))

    def _step(self, buf: bytes, pos: int, final: bool) -> int | None:
        """Consume one piece at `pos` (a line start, unless inside a compact line). Returns where to go on, or None
        when more input is needed."""
        if self._skip_object:
            return self._skip(buf, pos, final, closes=True)
        if self._skip_debris:
            return self._skip(buf, pos, final, closes=False)
        n = len(buf)
        eol = buf.find(b"\n", pos)
        if self._skip_line:
            self._skip_line = eol < 0 and not final
            return n if eol < 0 else eol + 1
        if self._in_line:
            if eol < 0:
                return self._compact(buf, pos, n, final)
            return self._compact(buf, pos, eol, True)
        line_ended = True
        if eol < 0:
            if not final:
                if n - pos <= self.max_object_bytes:
                    return None
                line_ended = False  # a line longer than the limit: decided on its start
            eol = n
        first = buf[pos]
        content = buf[pos:min(eol, pos + self.max_object_bytes + 1)].strip(_WS)  # a long line: its start decides
        if content[:1] == b"{" and (first == _OPEN or content != b"{"):
            if content == b"{":
                return self._pretty(buf, pos, final)
            if line_ended and eol - pos <= self.max_object_bytes:
                obj, repaired, _error = decode_object(content)
                if obj is not None:
                    self._frame(obj, pos, repaired)
                    return eol + 1
            return self._compact(buf, pos, eol, line_ended)
        if content and (first in _WS or content[:1] in (b"}", b"]", b"{")):
            return self._debris(buf, pos, final)
        head = buf[pos:min(eol, pos + EXCERPT_BYTES)].strip(_WS)
        kind: NoiseKind = "blank" if not content else "json_string" if content[:1] == b'"' else "text"
        self._out.append(Noise(kind, excerpt_of(head), self._lines.at(pos), self._offset + pos))
        if not line_ended:
            self._skip_line = True
            return n
        return eol + 1

    def _pretty_run(self, buf: bytes, pos: int) -> int:
        """The fast path for wrangler's own layout: consecutive pretty objects that each close with a `}` line and
        parse. Takes exactly what `_pretty` would take and stops at anything else; returns where it stopped. The
        closes come from the buffer's newlines (found once per buffer); each object's text goes to the `fast` hook
        first and is decoded by orjson only when the hook declines."""
        lines = self._lines
        scanned = lines.scanned  # else an object spanning many slices: each close is searched for, as it comes
        closes = lines.closes() if scanned else []
        find = buf.find
        startswith = buf.startswith
        loads = orjson.loads
        append = self._out.append
        offset = self._offset
        limit = self.max_object_bytes
        fast = self._fast
        ascii_text = lines.ascii()
        view = memoryview(buf)
        n = len(buf)
        count = len(closes)
        i = bisect_left(closes, pos)
        records: list[dict[str, Any]] | None = None  # the records of the current `Extracted` piece
        while startswith(b"{\n", pos):
            if scanned:
                while i < count and closes[i] < pos:
                    i += 1
                close = closes[i] if i < count else -1  # the first line that starts with `}`
            else:
                close = find(b"\n}", pos, pos + limit + 1)
            if close < 0 or close + 2 - pos > limit or close + 2 >= n or buf[close + 2] != _NEWLINE:
                break
            text = view[pos:close + 2]
            record = None if fast is None else fast(text, ascii_text)
            if record is None:
                try:
                    obj = loads(text)
                except orjson.JSONDecodeError:
                    break
                if type(obj) is not dict:
                    break
                append(Frame(obj, offset + pos, lines))
                records = None
            elif records is None:
                records = [record]
                append(Extracted(records))
            else:
                records.append(record)
            pos = close + 3
        return pos

    def _pretty(self, buf: bytes, pos: int, final: bool) -> int | None:
        """A pretty object whose first line is `{`: it ends at the first line that starts with `}`. When that text
        does not parse and a line that starts with `{` comes before its end, the object was cut off there and a new
        one starts. Only the first `max_object_bytes + 1` bytes are searched."""
        n = len(buf)
        limit = self.max_object_bytes
        window = pos + limit + 1
        close = buf.find(b"\n}", pos, window)
        if close < 0:
            if n < window and not final:
                return None  # the close may still come, and with it an object that parses
            restart = buf.find(b"\n{", pos, window)
            if restart >= 0:
                self._broken("truncated_object", "object cut off: a new object starts before it closes",
                             buf[pos:restart], pos)
                return restart + 1
            if n >= window:
                self._broken("oversized_object", f"object larger than {limit} bytes", buf[pos:window], pos)
                self._skip_object = True
                return self._skip(buf, pos + 1, final, closes=True)
            self._broken("truncated_object", "object cut off at the end of input", buf[pos:], pos)
            return n
        end = close + 2
        error = ""
        if end - pos <= limit:
            obj, repaired, error = decode_object(buf[pos:end])
            if obj is not None:
                self._frame(obj, pos, repaired)
                self._in_line = True  # the rest of the close line: blank, or more objects (`}{...}`)
                return end
        restart = buf.find(b"\n{", pos, close)
        if restart >= 0:
            self._broken("truncated_object", "object cut off: a new object starts before it closes",
                         buf[pos:restart], pos)
            return restart + 1
        if end - pos > limit:
            self._broken("oversized_object", f"object larger than {limit} bytes", buf[pos:end], pos)
        else:
            self._broken("malformed_json", error, buf[pos:end], pos)
        self._in_line = True  # the rest of the close line: blank, or more objects (`}{...}`)
        return end

    def _skip(self, buf: bytes, pos: int, final: bool, closes: bool) -> int | None:
        """Discard input up to the next line that starts with `{` — or with `}` too when `closes` (the end of an
        oversized object) — and end the skip there."""
        n = len(buf)
        hits = [hit for hit in (buf.find(b"\n}", pos) if closes else -1, buf.find(b"\n{", pos)) if hit >= 0]
        if not hits:
            if final:
                self._skip_object = self._skip_debris = False
                return n
            keep_from = n - 1  # a `\n` at the chunk's end may begin `\n}` or `\n{`
            return keep_from if keep_from > pos else None
        self._skip_object = self._skip_debris = False
        first = min(hits)
        if buf[first + 1] == _OPEN:
            return first + 1
        self._in_line = True
        return first + 2

    def _debris(self, buf: bytes, pos: int, final: bool) -> int | None:
        """Lines outside any object that look like its inside: an object whose start is missing. They cost one
        piece, up to the next line that starts with `{`."""
        n = len(buf)
        restart = buf.find(b"\n{", pos)
        if restart < 0:
            if not final:
                if n - pos <= self.max_object_bytes:
                    return None
                self._skip_debris = True
            end = n
        else:
            end = restart + 1
        self._broken("truncated_object", "object start missing: object lines outside any object", buf[pos:end], pos)
        if self._skip_debris:
            return n - 1  # a `\n` at the chunk's end may begin `\n{`
        return end

    def _compact(self, buf: bytes, pos: int, end: int, line_ended: bool) -> int | None:
        """Compact objects on one line, with junk or cut objects among them, from `pos` up to `end` (the line's
        end when `line_ended`, else the end of the input so far). Returns the next position, or None."""
        limit = self.max_object_bytes
        text = buf[pos:end].decode("utf-8", errors="surrogateescape")
        size = len(text)
        self._in_line = True
        i = 0
        at = pos  # byte position of text[i]
        if self._junk:
            nxt = text.find("{")
            if nxt < 0:
                return self._end_of_part(end, line_ended)
            self._junk = False
            i = nxt
            at += len(text[:nxt].encode("utf-8", errors="surrogateescape"))
        while True:
            start = i
            while i < size and text[i] in " \t\r":
                i += 1
            at += i - start
            if i >= size:
                return self._end_of_part(end, line_ended)
            if text[i] != "{":
                done = self._junk_piece(text, i, at, end, line_ended, "text between objects", i + 1)
                if done is None:
                    return at if at > pos else None
                if done < 0:
                    return self._end_of_part(end, line_ended)
                at += len(text[i:done].encode("utf-8", errors="surrogateescape"))
                i = done
                continue
            if line_ended and not text[i + 1:].strip(" \t\r"):
                self._in_line = False
                return at  # a `{` that ends its line starts a pretty object (`}{` of files joined without `\n`)
            try:
                _value, j = _DECODER.raw_decode(text, i)
            except RecursionError:  # nested deeper than the decoder goes: only this line's rest is lost
                self._broken("malformed_json", "JSON nested too deeply", text[i:], at)
                return self._skip_rest(end, line_ended)
            except json.JSONDecodeError as error:
                avail = end - at
                near = len(text[i:error.pos].encode("utf-8", errors="surrogateescape")) + _LOOKAHEAD
                unterminated = error.msg.startswith("Unterminated string")
                if avail > limit and (unterminated or near > limit):
                    # No object completes, and the JSON stays valid, within the limit: an oversized object.
                    self._broken("oversized_object", f"object larger than {limit} bytes", text[i:], at)
                    return self._skip_rest(end, line_ended)
                if not line_ended and (unterminated or near > avail):
                    return at if at > pos else None  # it may still complete
                if unterminated or error.pos >= size:  # the line ended inside it: all the rest is this object
                    self._broken("truncated_object", "object cut off at the end of its line", text[i:], at)
                    return self._end_of_part(end, line_ended)
                restart = _restart(text, i, error.pos)
                if restart >= 0:  # a cut object, and the next one starts where it was cut
                    self._broken("malformed_json", error.msg, text[i:restart], at)
                    at += len(text[i:restart].encode("utf-8", errors="surrogateescape"))
                    i = restart
                    continue
                done = self._junk_piece(text, i, at, end, line_ended, error.msg, error.pos + 1)
                if done is None:
                    return at if at > pos else None
                if done < 0:
                    return self._end_of_part(end, line_ended)
                at += len(text[i:done].encode("utf-8", errors="surrogateescape"))
                i = done
                continue
            raw = text[i:j].encode("utf-8", errors="surrogateescape")
            if len(raw) > limit:
                self._broken("oversized_object", f"object larger than {limit} bytes", raw, at)
                return self._skip_rest(end, line_ended)
            obj, repaired, reason = decode_object(raw)  # orjson's rules, as for every other layout
            if obj is None:
                self._broken("malformed_json", reason, raw, at)
            else:
                self._frame(obj, at, repaired)
            at += len(raw)
            i = j

    def _junk_piece(self, text: str, i: int, at: int, end: int, line_ended: bool, reason: str,
                    search_from: int) -> int | None:
        """Report the junk at text[i], up to the next `{` from text[search_from]. Returns where the next piece
        starts, -1 when the junk runs on to the line's end, or None when more input is needed to tell."""
        nxt = text.find("{", search_from)
        if nxt < 0 and not line_ended:
            if end - at < EXCERPT_BYTES:
                return None
            self._junk = True
        self._broken("malformed_json", reason, text[i:nxt] if nxt >= 0 else text[i:], at)
        return nxt

    def _end_of_part(self, end: int, line_ended: bool) -> int:
        if line_ended:
            self._in_line = self._junk = False
            return end + 1
        return end

    def _skip_rest(self, end: int, line_ended: bool) -> int:
        self._in_line = self._junk = False
        self._skip_line = not line_ended
        return end + 1 if line_ended else end
