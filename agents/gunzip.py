"""Incremental gunzip that keeps what it could read and says where the damage is, instead of raising.

`gzip.GzipFile.read` raises on a truncated or corrupt file and loses the data of the read that failed; `zcat`
recovers more. `Gunzip` feeds the compressed bytes to zlib as they come (concatenated members too, NUL padding
after the last one tolerated), returns every byte that decompressed, and on damage stops with `damage` set: the
offset in the compressed file and the reason. The offset of corrupt data is found by feeding the failing chunk
again in small steps from a copy of the decompressor (only on that error path).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

GZIP_MAGIC = b"\x1f\x8b"
_WBITS = 16 + zlib.MAX_WBITS
_STEP = 512


@dataclass(frozen=True, slots=True)
class InputDamage:
    offset: int  # in the input as stored (the compressed file)
    reason: str


class Gunzip:
    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(wbits=_WBITS)
        self._fed = 0  # compressed bytes consumed so far
        self._in_member = False  # a member started and has not ended
        self.damage: InputDamage | None = None

    def feed(self, data: bytes) -> bytes:
        """The decompressed bytes of `data` (b"" once damage was found)."""
        if self.damage is not None or not data:
            return b""
        before = self._zlib.copy()
        start, in_member = self._fed, self._in_member
        try:
            return self._feed(data)
        except zlib.error:
            self._zlib, self._fed, self._in_member = before, start, in_member
            return self._locate(data, _STEP)

    def finish(self) -> None:
        """At the end of the input: a member left open means the file was cut short."""
        if self.damage is None and self._in_member:
            self.damage = InputDamage(self._fed, "the gzip data ends early (the file is truncated)")

    def _feed(self, data: bytes) -> bytes:
        out = []
        rest = data
        while rest:
            if not self._in_member and not rest.strip(b"\0"):  # padding after the last member
                self._fed += len(rest)
                break
            self._in_member = True
            out.append(self._zlib.decompress(rest))
            if not self._zlib.eof:
                self._fed += len(rest)
                break
            unused = self._zlib.unused_data
            self._fed += len(rest) - len(unused)
            rest = unused
            self._in_member = False
            self._zlib = zlib.decompressobj(wbits=_WBITS)
        return b"".join(out)

    def _locate(self, data: bytes, step: int) -> bytes:
        """Feed `data` again in pieces of `step` bytes (then 1) to find the first byte zlib rejects; returns what
        decompressed before it and sets `damage`."""
        out = []
        for at in range(0, len(data), step):
            piece = data[at:at + step]
            before = self._zlib.copy()
            start, in_member = self._fed, self._in_member
            try:
                out.append(self._feed(piece))
            except zlib.error as error:
                if step > 1:
                    self._zlib, self._fed, self._in_member = before, start, in_member
                    out.append(self._locate(piece, 1))
                else:
                    self.damage = InputDamage(start, f"corrupt gzip data ({error})")
                return b"".join(out)
        return b"".join(out)  # pragma: no cover - the whole chunk failed, so one of its pieces does
