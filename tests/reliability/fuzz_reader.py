"""Coverage-guided fuzzing of the reader with atheris (in the dev extra on Linux; the test skips where it is missing).

Run: .venv/bin/python tests/reliability/fuzz_reader.py -atheris_runs=100000
Any exception, or counts that do not add up, is a crash atheris reports with the input that caused it.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from pipeline.parsing import LogParser


def one_input(data: bytes) -> None:
    parser = LogParser("atheris", max_object_bytes=4096)
    cut = data[0] if data else 0
    dead = parser.feed(data[:cut]).dead_letters + parser.feed(data[cut:]).dead_letters + parser.finish().dead_letters
    stats = parser.stats
    framed = sum(1 for d in dead if d["kind"] not in ("invalid_field", "malformed_json", "truncated_object",
                                                      "oversized_object"))
    if stats.events != stats.records + stats.non_request + framed:
        raise AssertionError(f"unaccounted objects: {stats.summary_line()}")
    if sum(1 for d in dead if d["kind"] != "invalid_field") != stats.rejected:
        raise AssertionError(f"rejects without a dead letter: {stats.summary_line()}")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
