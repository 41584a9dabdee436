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

import msgspec
import orjson

from pipeline.logpush import trace_items_of_ndjson
from pipeline.parsing import LogParser, ParseOutput
from pipeline.pieces import has_surrogate_escape, repair_surrogate_escapes

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


_ARRAY_OF_RAW = msgspec.json.Decoder(list[msgspec.Raw])


def raw_items_of_array(body: bytes) -> list[msgspec.Raw]:
    """`POST /v1/tail`: a JSON array of TraceItem objects (what a Tail Worker's `tail(events)` receives), split into
    each item's JSON text without decoding it: the parser decodes one at a time, as it does a capture's objects
    (35 % faster than decoding the whole array first, and a bad item costs only itself)."""
    try:
        try:
            return _ARRAY_OF_RAW.decode(body)
        except msgspec.DecodeError:
            fixed = _repaired(body)  # what JavaScript writes for an emoji cut in half, invalid UTF-8
            if fixed == body:
                raise
            return _ARRAY_OF_RAW.decode(fixed)
    except msgspec.ValidationError:
        kind = type(orjson.loads(body)).__name__ if _is_json(body) else "value"
        raise BodyError(400, "not_an_array", f"the body is a JSON {kind}, not an array of events") from None
    except msgspec.DecodeError as error:
        raise BodyError(400, "malformed_json", f"the body is not JSON: {error}") from None
    except RecursionError:
        raise BodyError(400, "malformed_json", "the body nests JSON too deeply") from None


def _repaired(body: bytes) -> bytes:
    """The body with invalid UTF-8 and lone surrogate escapes replaced by U+FFFD, as the framer repairs an object
    (here the whole body, before it is split: such events are not counted in `repaired_utf8`)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        body = body.decode("utf-8", errors="replace").encode("utf-8")
    return repair_surrogate_escapes(body) if has_surrogate_escape(body) else body


def _is_json(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


def feed_body(parser: LogParser, route: str, body: bytes) -> ParseOutput:
    """The records of a pushed body: `tail` (a JSON array) or `logpush` (NDJSON of workers_trace_events)."""
    if route == "tail":
        return parser.feed_raw_objects(raw_items_of_array(body))
    try:
        items = trace_items_of_ndjson(body)
    except ValueError as error:
        raise BodyError(400, "malformed_ndjson", str(error)) from None
    return parser.feed_objects(items)


def request_key(route: str, body: bytes) -> bytes:
    """A retried request carries the same body: its digest is the key (after decompression, so a sender that
    compresses differently on a retry is still recognised)."""
    digest = hashlib.sha256(route.encode() + b"\0")  # sha256: ~0.9 ms for a 500-event body here, blake2b 1.6 ms
    digest.update(body)
    return digest.digest()


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
