"""Printing tail events as `wrangler tail --format json` does, in each of its layouts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import orjson

Layout = Literal["pretty4", "pretty2", "compact", "jsonl"]


def _indent4(pretty2: bytes) -> bytes:
    """Double the indentation of 2-space pretty JSON. Strings hold no raw newline, so every `\\n` followed by
    spaces is indentation; a placeholder byte (never raw in JSON) marks levels already counted."""
    out = pretty2.replace(b"\n  ", b"\n\x01")
    while b"\x01  " in out:
        out = out.replace(b"\x01  ", b"\x01\x01")
    return out.replace(b"\x01", b"    ")


def render_capture(events: Iterable[Mapping[str, Any]], layout: Layout = "pretty4") -> Iterator[bytes]:
    """The bytes wrangler prints for each event, one `bytes` per event.

    - `pretty4`: `console.log(JSON.stringify(event, null, 4))` — wrangler >= 4.24.4;
    - `pretty2`: the same with a 2-space indent — older wrangler;
    - `compact`: `JSON.stringify(event)` with nothing between objects;
    - `jsonl`: one compact object per line.

    Byte for byte: `"key": value`, no trailing spaces, `[]`/`{}` for empty containers, non-ASCII as is (orjson's
    output equals JSON.stringify's for these events, whose numbers are integers or short decimals).
    """
    if layout not in ("pretty4", "pretty2", "compact", "jsonl"):
        raise ValueError(f"unknown layout: {layout!r}")
    dumps = orjson.dumps
    for event in events:
        if layout == "pretty4":
            yield _indent4(dumps(event, option=orjson.OPT_INDENT_2)) + b"\n"
        elif layout == "pretty2":
            yield dumps(event, option=orjson.OPT_INDENT_2) + b"\n"
        elif layout == "compact":
            yield dumps(event)
        else:
            yield dumps(event) + b"\n"
