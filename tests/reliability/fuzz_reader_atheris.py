"""Coverage-guided fuzzing of the reader with atheris (libFuzzer): `LogParser` over arbitrary bytes, fed in chunks
the input itself chooses, must never raise and must account for every rejection with a reason.

    .venv/bin/python tests/reliability/fuzz_reader_atheris.py -runs=100000

atheris is optional (`pip install -e '.[fuzz]'`); `test_atheris.py` runs this for a few seconds when it imports.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from pipeline.framing import TailFramer  # noqa: F401 - instrumented for coverage
    from pipeline.parsing import LogParser

SAMPLE = Path(__file__).parents[1] / "fixtures" / "wrangler-tail-sample.json"


def one_input(data: bytes) -> None:
    if not data:
        return
    step = 1 + data[0] * 37  # the chunk size comes from the input: chunking is fuzzed too
    body = data[1:]
    parser = LogParser("atheris", max_object_bytes=4096)
    records, letters = [], []
    for at in range(0, len(body), step):
        out = parser.feed(body[at:at + step])
        records.extend(out.records)
        letters.extend(out.dead_letters)
    out = parser.finish()
    records.extend(out.records)
    letters.extend(out.dead_letters)
    stats = parser.stats
    if stats.records != len(records) or sum(stats.rejected_by_kind.values()) != stats.rejected:
        raise AssertionError(f"counters do not add up: {stats.summary_line()}")
    if len([d for d in letters if d["kind"] != "invalid_field"]) != stats.rejected:
        raise AssertionError("a rejection without its dead letter")
    if any(not d["reason"] for d in letters):
        raise AssertionError("a dead letter without a reason")
    if body.strip() and stats.events + stats.noise + stats.rejected == 0:
        raise AssertionError("non-blank input left uncounted")


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parents[2]))
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
