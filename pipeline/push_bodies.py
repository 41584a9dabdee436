"""Bodies pushed to `tailwatch ingest --listen`: decompressed within a size limit, decoded into events, and keyed
for deduplication of retried requests.

Pure: bytes in, events or a `BodyError` (the HTTP status and a reason) out. `RequestKeys` remembers the keys of
the last `capacity` published requests (a bounded LRU of 32-byte digests: the default 100,000 keys hold ~27 MB,
measured with tracemalloc).
"""

from __future__ import annotations

import hashlib
import zlib
from collections import OrderedDict
from typing import Any

import orjson

from pipeline.logpush import trace_items_of_ndjson

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024  # decompressed
DEFAULT_REQUEST_KEYS = 100_000
GZIP_MAGIC = b"\x1f\x8b"


class BodyError(Exception):
    """A body that cannot be taken: `status` 400 (malformed) or 413 (too large), `kind` for the dead letter."""

    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.kind = kind
        self.reason = reason


def too_large(limit: int) -> BodyError:
    return BodyError(413, "body_too_large", f"the body is over the limit of {limit} bytes (decompressed)")


def decompressed(raw: bytes, content_encoding: str, limit: int) -> bytes:
    """The body as sent, gunzipped when it says `Content-Encoding: gzip` or starts with gzip's magic bytes (Logpush
    sends `.gz` files). Never more than `limit` bytes are inflated: a gzip bomb costs `limit`, then 413."""
    encoding = content_encoding.strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise BodyError(415, "unsupported_encoding", f"Content-Encoding {content_encoding[:40]!r} is not supported")
    if encoding in ("gzip", "x-gzip") or raw.startswith(GZIP_MAGIC):
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        try:
            body = inflater.decompress(raw, limit + 1)
        except zlib.error as error:
            raise BodyError(400, "malformed_gzip", f"the body is not valid gzip: {error}") from None
        if len(body) > limit:
            raise too_large(limit)
        if not inflater.eof:
            raise BodyError(400, "malformed_gzip", "the gzip body is truncated")
        return body
    if len(raw) > limit:
        raise too_large(limit)
    return raw


def trace_items_of_array(body: bytes) -> list[Any]:
    """`POST /v1/tail`: a JSON array of TraceItem objects (what a Tail Worker's `tail(events)` receives)."""
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BodyError(400, "malformed_json", f"the body is not JSON: {error}") from None
    if not isinstance(items, list):
        raise BodyError(400, "not_an_array", f"the body is a JSON {type(items).__name__}, not an array of events")
    return items


def trace_items(route: str, body: bytes) -> list[Any]:
    """The events of a pushed body: `tail` (a JSON array) or `logpush` (NDJSON of workers_trace_events)."""
    if route == "tail":
        return trace_items_of_array(body)
    try:
        return trace_items_of_ndjson(body)
    except ValueError as error:
        raise BodyError(400, "malformed_ndjson", str(error)) from None


def request_key(route: str, body: bytes) -> bytes:
    """A retried request carries the same body: its digest is the key (after decompression, so a sender that
    compresses differently on a retry is still recognised)."""
    return hashlib.blake2b(body, digest_size=32, person=route.encode()[:16]).digest()


class RequestKeys:
    """The keys of the last `capacity` requests published (least recently seen dropped first)."""

    def __init__(self, capacity: int = DEFAULT_REQUEST_KEYS) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self._keys: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def seen(self, key: bytes) -> bool:
        if key in self._keys:
            self._keys.move_to_end(key)
            return True
        return False

    def add(self, key: bytes) -> None:
        if self.capacity == 0:
            return
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)
