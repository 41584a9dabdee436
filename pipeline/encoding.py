"""What an input's bytes are: its text encoding, read from its first bytes, and — when it held no wrangler event —
what it held instead.

wrangler writes UTF-8. A capture saved by Windows PowerShell's `>` is UTF-16LE with a byte order mark; other tools
write UTF-8 with a BOM, or UTF-16/UTF-32 without one. `InputDecoder` recognizes them from the first four bytes (a
BOM, or the NUL pattern of ASCII text: `{\\0\\n\\0` is UTF-16LE) and transcodes the input to UTF-8 as it comes, so the
reader sees what wrangler wrote. Plain UTF-8 passes through untouched and is decided once per input. Offsets in
dead letters of a transcoded input count bytes of its UTF-8 form (lines are the same).
"""

from __future__ import annotations

import codecs

_BOMS = (  # longest first: the UTF-32LE mark starts with the UTF-16LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_NAMES = {"utf-8-sig": "UTF-8 with a byte order mark", "utf-16-le": "UTF-16LE", "utf-16-be": "UTF-16BE",
          "utf-32-le": "UTF-32LE", "utf-32-be": "UTF-32BE"}
_HEAD = 4


def _without_bom(head: bytes) -> str | None:
    """The encoding of text whose first characters are ASCII, from its NUL pattern; None for UTF-8 (or binary)."""
    a, b, c, d = head[:4]
    if a and not b and not c and not d:
        return "utf-32-le"
    if not a and not b and not c and d:
        return "utf-32-be"
    if a and not b and c and not d:
        return "utf-16-le"
    if not a and b and not c and d:
        return "utf-16-be"
    return None


class InputDecoder:
    """Transcodes one input to UTF-8 when its first bytes show another encoding. `feed` returns the UTF-8 bytes so
    far; `settled` is True once the input is known to be plain UTF-8 (the caller can then stop calling it)."""

    def __init__(self) -> None:
        self._head = b""
        self._decoder: codecs.IncrementalDecoder | None = None
        self.encoding: str | None = None  # None until decided; "utf-8" for plain UTF-8
        self.settled = False

    @property
    def description(self) -> str | None:
        """How the input was read, when it was not plain UTF-8 (`UTF-16LE`, …)."""
        return _NAMES.get(self.encoding or "")

    def feed(self, chunk: bytes, final: bool = False) -> bytes:
        if self.encoding is None:
            self._head += chunk
            if len(self._head) < _HEAD and not final:
                return b""
            chunk, self._head = self._head, b""
            chunk = self._decide(chunk)
        if self._decoder is None:
            return chunk
        return self._decoder.decode(chunk, final).encode("utf-8")

    def _decide(self, head: bytes) -> bytes:
        for bom, encoding in _BOMS:
            if head.startswith(bom):
                self.encoding = encoding
                if encoding == "utf-8-sig":  # UTF-8 after the mark: passed through, invalid bytes left to the reader
                    self.settled = True
                else:
                    self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
                return head[len(bom):]
        found = _without_bom(head) if len(head) >= _HEAD else None
        self.encoding = found or "utf-8"
        if found is None:
            self.settled = True
            return head
        self._decoder = codecs.getincrementaldecoder(found)(errors="replace")
        return head


def what_was_found(sample: bytes, size: int, encoding: str | None, noise: int, rejected: int,
                   rejected_kinds: list[str]) -> str:
    """What an input that held no wrangler event held instead, in words. `sample`: its first bytes as the reader saw
    them (UTF-8, after any transcoding); `size`: its length as read; `encoding`: how it was read, when not plain
    UTF-8."""
    if size == 0:
        return "an empty input"
    read_as = f" (read as {encoding})" if encoding else ""
    if encoding is None or encoding.startswith("UTF-8"):
        controls = sum(1 for byte in sample if byte < 0x20 and byte not in b"\t\n\r\f")
        if b"\0" in sample or controls * 20 > len(sample):
            return f"binary data ({size} bytes, starting {sample[:16].hex(' ')}), not text"
        try:
            sample.decode("utf-8")
        except UnicodeDecodeError as error:
            if error.start < len(sample) - 3:  # not just a character cut by the sample's end
                return ("text that is not UTF-8 (a wrong encoding, e.g. Latin-1 or Windows-1252: save the capture "
                        "as UTF-8)")
    if rejected:
        return f"JSON with no complete tail event{read_as} ({rejected} rejected: {', '.join(sorted(rejected_kinds))})"
    first = next((line.strip() for line in sample.decode("utf-8", "replace").splitlines() if line.strip()), "")
    return f"text with no JSON object{read_as} ({noise} lines; the first: {first[:80]!r})"
