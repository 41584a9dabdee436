"""`tailwatch parse FILE…|-`: normalized records as JSON Lines on stdout, one summary line on stderr."""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO

import orjson

from agents.commands.common import add_route_args, extractor_from
from agents.sources import chunks_of, source_name
from pipeline.parsing import LogParser, ParseOutput, ParseStats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="FILE", help="captures (plain or .gz); - for stdin")
    parser.add_argument("--dead-letters", metavar="FILE", help="also write rejected pieces as JSON Lines here")
    add_route_args(parser)


def run(args: argparse.Namespace) -> int:
    extractor = extractor_from(args)
    totals = ParseStats()
    out = sys.stdout.buffer
    dead = open(args.dead_letters, "wb") if args.dead_letters else None  # noqa: SIM115
    try:
        for path in args.inputs:
            parser = LogParser(source_name(path), extractor)
            for chunk in chunks_of(path):
                _emit(parser.feed(chunk), out, dead)
            _emit(parser.finish(), out, dead)
            totals.merge(parser.stats)
        out.flush()
    except FileNotFoundError as error:
        print(f"tailwatch parse: no such file: {error.filename}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    finally:
        if dead is not None:
            dead.close()
    for notice in extractor.catalog.take_notices():
        print(f"tailwatch parse: {notice}", file=sys.stderr)
    print(f"{totals.summary_line()} {extractor.catalog.stats.summary()}", file=sys.stderr)
    return 0


def _emit(result: ParseOutput, out: BinaryIO, dead: BinaryIO | None) -> None:
    if result.records:
        out.write(b"".join(orjson.dumps(record) + b"\n" for record in result.records))
    if dead is not None and result.dead_letters:
        dead.write(b"".join(orjson.dumps(letter) + b"\n" for letter in result.dead_letters))
