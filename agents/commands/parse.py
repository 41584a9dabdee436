"""`tailwatch parse FILE…|-`: normalized records as JSON Lines on stdout, one summary line on stderr."""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO

import orjson

from agents.commands.common import add_route_args, check_input_files, extractor_from
from agents.sources import chunks_of, damage_of, report_input_problems, source_name
from pipeline.parsing import LogParser, ParseOutput, ParseStats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="FILE", help="captures (plain or .gz); - for stdin")
    parser.add_argument("--dead-letters", metavar="FILE", help="also write rejected pieces as JSON Lines here")
    add_route_args(parser)


def run(args: argparse.Namespace) -> int:
    check_input_files(args.inputs)
    extractor = extractor_from(args)
    totals = ParseStats()
    out = sys.stdout.buffer
    dead = open(args.dead_letters, "wb") if args.dead_letters else None  # noqa: SIM115
    try:
        for path in args.inputs:
            parser = LogParser(source_name(path), extractor)
            chunks = chunks_of(path)
            for chunk in chunks:
                _emit(parser.feed(chunk), out, dead)
            if (damage := damage_of(chunks)) is not None:  # the records before the damage stand
                _emit(parser.input_damaged(damage.offset, damage.reason), out, dead)
            _emit(parser.finish(), out, dead)
            totals.merge(parser.stats)
        out.flush()
    except BrokenPipeError:
        return 0
    finally:
        if dead is not None:
            dead.close()
    for notice in extractor.catalog.take_notices():
        print(f"tailwatch parse: {notice}", file=sys.stderr)
    print(f"{totals.summary_line()} {extractor.catalog.stats.summary()}", file=sys.stderr)
    return report_input_problems("parse", totals)


def _emit(result: ParseOutput, out: BinaryIO, dead: BinaryIO | None) -> None:
    if result.records:
        out.write(b"".join(orjson.dumps(record) + b"\n" for record in result.records))
    if dead is not None and result.dead_letters:
        dead.write(b"".join(orjson.dumps(letter) + b"\n" for letter in result.dead_letters))
