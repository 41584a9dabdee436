"""Latency sketches: fastdigest t-digests, built so that the same values always give the same digest.

An open pane keeps its raw values; when it closes they are sorted (by fastdigest) and turned into a digest, so the
result does not depend on arrival order or batching (live and replay agree to the bit). Closed digests merge oldest
first.
A closed digest is held as its compact bytes (`to_bytes`: ~16 bytes a centroid), not as a live object, which
would reserve room for all its centroids; it is decoded when a window is merged or a quantile is read.
Serialized in the `tdigest` dict format, so `tdigest`/`fastdigest` users downstream can merge them.

A digest held for windows (`pipeline.held_panes`) is kept smaller still when it is only its values (a pane of up to
`HELD_VALUES_MAX` values, each its own centroid of weight 1): `held_form` keeps `VALUES_TAG` + the values (8 bytes
each, against 16 a centroid + an 80-byte header), only after checking that `expanded` rebuilds the digest's bytes
exactly — so a window merged from held digests is byte for byte the one merged from the digests.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import numpy as np
import orjson
from fastdigest import TDigest

PANE_CENTROIDS = 300  # p95 error < 0.1% on 10k lognormal values (research/sketch-bakeoff.md)

Sketch = bytes  # a t-digest in fastdigest's bytes format
HeldSketch = bytes  # a Sketch, or VALUES_TAG + the values that make it (`held_form`)
VALUES_TAG = b"v"  # a Sketch starts with b"FASTDIG~"
HELD_VALUES_MAX = 16  # larger panes keep their digest bytes (rebuilding them costs more than it saves)

# fastdigest 0.12's bytes: magic, version (u32), centroids (u64), max centroids (u64), mass, sum, min, max (f64),
# values (u64), 12 bytes we do not read, then (mean, weight) f64 pairs. `held_form` checks every rebuilt digest;
# `to_json` falls back to `to_dict` on bytes of another shape (both tested against fastdigest's own decoding).
_MAGIC = b"FASTDIG~\x01\x00\x00\x00"
_HEAD = struct.Struct("<QQddddQ12x")
_HEAD_END = len(_MAGIC) + _HEAD.size
_COUNTS = struct.Struct("<Q")
_VALUES = [struct.Struct(f"<{count}d") for count in range(HELD_VALUES_MAX + 1)]
_PAIRS = [struct.Struct(f"<{2 * count}d") for count in range(HELD_VALUES_MAX + 1)]
_ONES = [_VALUES[count].pack(*[1.0] * count) for count in range(HELD_VALUES_MAX + 1)]
_TAG = VALUES_TAG[0]


def digest_of(values: list[float]) -> Sketch | None:
    """The digest of a pane's values in any order: fastdigest sorts them itself (a stable sort, so equal values
    keep their order and the bytes are those of the sorted values: tested)."""
    if not values:
        return None
    encoded: bytes = TDigest.from_values(values, max_centroids=PANE_CENTROIDS).to_bytes()
    return encoded


def held_form(sketch: Sketch | None) -> HeldSketch | None:
    """The digest as held for windows: its values when that rebuilds it exactly and is shorter, else itself."""
    if sketch is None or len(sketch) < _HEAD_END:
        return sketch
    (values,) = _COUNTS.unpack_from(sketch, len(_MAGIC))
    (centroids,) = _COUNTS.unpack_from(sketch, _HEAD_END - 20)
    if values != centroids or not 0 < values <= HELD_VALUES_MAX or len(sketch) != _HEAD_END + 16 * values:
        return sketch
    pairs = memoryview(sketch)[_HEAD_END:].cast("d")
    if pairs[1::2].tobytes() != _ONES[values]:
        return sketch
    held = VALUES_TAG + pairs[0::2].tobytes()
    return held if _expanded(held) == sketch else sketch


def expanded(held: HeldSketch | None) -> Sketch | None:
    """A held digest's bytes (`held_form` undone)."""
    return None if held is None else _expanded(held)


def _expanded(held: HeldSketch) -> Sketch:
    if held[0] != _TAG:
        return held
    count = len(held) >> 3
    values = _VALUES[count].unpack_from(held, 1)
    total = 0.0
    for value in values:  # fastdigest adds them in order (sum() compensates on Python >= 3.12)
        total += value
    pairs = [1.0] * (2 * count)
    pairs[0::2] = values
    return (_MAGIC + _HEAD.pack(count, PANE_CENTROIDS, float(count), total, values[0], values[-1], count)
            + _PAIRS[count].pack(*pairs))


def merge_held_digests(held: list[HeldSketch | None]) -> Sketch | None:
    """`merge_digests` of held digests (in the order given)."""
    present = [sketch for sketch in held if sketch is not None]
    if len(present) <= 1:
        return _expanded(present[0]) if present else None
    merged = TDigest.from_bytes(_expanded(present[0]))
    for sketch in present[1:]:
        merged.merge_inplace(TDigest.from_bytes(_expanded(sketch)))
    encoded: bytes = merged.to_bytes()
    return encoded


def merge_digests(sketches: Iterable[Sketch | None]) -> Sketch | None:
    present = [sketch for sketch in sketches if sketch is not None]
    if len(present) <= 1:
        return present[0] if present else None
    merged = TDigest.from_bytes(present[0])
    for sketch in present[1:]:
        merged.merge_inplace(TDigest.from_bytes(sketch))
    encoded: bytes = merged.to_bytes()
    return encoded


def quantile(sketch: Sketch | None, q: float) -> float | None:
    if sketch is None:
        return None
    return round(float(TDigest.from_bytes(sketch).quantile(q)), 3)


def quantiles(sketch: Sketch | None, qs: tuple[float, ...]) -> list[float | None]:
    """Several quantiles of one sketch, decoding it once."""
    if sketch is None:
        return [None] * len(qs)
    digest = TDigest.from_bytes(sketch)
    return [round(float(digest.quantile(q)), 3) for q in qs]


def to_dict(sketch: Sketch | None) -> dict[str, Any] | None:
    return None if sketch is None else dict(TDigest.from_bytes(sketch).to_dict())


def to_json(sketch: Sketch) -> bytes:
    """`orjson.dumps(to_dict(sketch))`, byte for byte (tested), without building a dict per centroid: a pane
    snapshot's digests (~300 centroids each) were most of its cost to send. orjson writes the (mean, weight) pairs
    from the bytes as a two-column array, `[[m,c],[m,c]]`, which two text replacements turn into the `{"m", "c"}`
    objects (a number's text holds no `[`, `]` or `,`)."""
    count = (len(sketch) - _HEAD_END) >> 4
    if not sketch.startswith(_MAGIC) or len(sketch) != _HEAD_END + 16 * count:
        return orjson.dumps(to_dict(sketch))
    centroids, most, mass, total, low, high, values = _HEAD.unpack_from(sketch, len(_MAGIC))
    if centroids != count:
        return orjson.dumps(to_dict(sketch))
    head = orjson.dumps({"max_centroids": most, "mass": mass, "sum": total, "min": low, "max": high,
                         "n_values": values})
    if not count:
        return head[:-1] + b',"centroids":[]}'
    pairs = orjson.dumps(np.frombuffer(sketch, "<f8", offset=_HEAD_END).reshape(count, 2),
                         option=orjson.OPT_SERIALIZE_NUMPY)
    objects = pairs[2:-2].replace(b",", b',"c":').replace(b'],"c":[', b'},{"m":')
    return head[:-1] + b',"centroids":[{"m":' + objects + b"}]}"


def from_dict(data: dict[str, Any] | None) -> Sketch | None:
    if data is None:
        return None
    encoded: bytes = TDigest.from_dict(data).to_bytes()
    return encoded
