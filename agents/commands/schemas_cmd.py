"""`tailwatch schemas export [--out DIR]` and `tailwatch schemas check`: the JSON Schema of every message."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

import schemas
from agents.commands.common import CheckFailed, add_action
from schemas.registry import json_schemas

DEFAULT_DIR = Path(schemas.__file__).parent / "json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_action(parser, {"export": "write schemas/json/*.json", "check": "fail if schemas/json/*.json are stale"})
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="directory (default: the package's json/)")


def rendered() -> dict[str, bytes]:
    return {f"{name}.json": orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
            for name, schema in json_schemas().items()}


def stale_files(directory: Path) -> list[str]:
    wanted = rendered()
    stale = [name for name, body in wanted.items()
             if not (directory / name).is_file() or (directory / name).read_bytes() != body]
    extra = [path.name for path in directory.glob("*.json") if path.name not in wanted]
    return sorted(stale + extra)


def run(args: argparse.Namespace) -> int:
    directory: Path = args.out
    if args.action == "check":
        stale = stale_files(directory)
        if stale:
            raise CheckFailed(f"stale JSON Schemas in {directory}: {', '.join(stale)}; run `tailwatch schemas export`")
        names = sorted(rendered())
        print(f"{len(names)} JSON Schemas in {directory} match the message models: {', '.join(names)}")
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    wanted = rendered()
    for path in directory.glob("*.json"):
        if path.name not in wanted:
            path.unlink()
    for name, body in wanted.items():
        (directory / name).write_bytes(body)
    print(f"wrote {len(wanted)} schemas to {directory}", file=sys.stderr)
    return 0
