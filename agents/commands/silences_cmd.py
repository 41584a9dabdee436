"""`tailwatch silences add|list|expire`: silences on the compacted `<prefix>.silences` topic.

    tailwatch silences add --matcher rule=factory-404-spike --matcher endpoint=/api/x --duration 2h \\
        --comment "known broken link, fix deploying"
    tailwatch silences list [--all] [--json]
    tailwatch silences expire ID

Times are ISO 8601 UTC and compared with the event time of alert transitions (see `pipeline.rules.silences`).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
import uuid
from typing import Any

import orjson
from pydantic import ValidationError

from agents.alert_silences import publish_silence, read_silences
from agents.commands.common import add_action, add_kafka_args, kafka_settings_from
from agents.settings import KafkaSettings
from agents.topics import KafkaUnavailable
from pipeline.rules.silences import MatcherError, parse_matcher
from pipeline.timestamps import iso_to_ms, ms_to_iso
from schemas.rules import duration_ms


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_action(parser, {"add": "add a silence", "list": "list the silences", "expire": "expire silence ID now"})
    parser.add_argument("id", nargs="?", help="expire: the silence id")
    parser.add_argument("--matcher", action="append", default=[], metavar="LABEL=VALUE",
                        help="add: name=value, name!=value, name=~regex, name!~regex (repeatable; all must match; "
                             "labels: rule, service, endpoint, severity and the rule's own)")
    parser.add_argument("--duration", default=None, help="add: how long, e.g. 30m, 2h, 1d (or give --ends)")
    parser.add_argument("--starts", default=None, help="add: ISO 8601 start (default: now)")
    parser.add_argument("--ends", default=None, help="add: ISO 8601 end (exclusive)")
    parser.add_argument("--comment", default=None, help="add: why (required)")
    parser.add_argument("--created-by", default=None, help="add: who (default: the login name)")
    parser.add_argument("--all", action="store_true", help="list: expired silences too")
    parser.add_argument("--json", action="store_true", help="list: JSON Lines (a file `replay --silences` reads)")
    add_kafka_args(parser)


def now_ms() -> int:
    return int(time.time() * 1000)


def _fail(message: str, code: int = 2) -> int:
    print(f"tailwatch silences: {message}", file=sys.stderr)
    return code


def _new_silence(args: argparse.Namespace) -> dict[str, Any]:
    if not args.matcher:
        raise ValueError("give at least one --matcher")
    if not args.comment:
        raise ValueError("give a --comment (why the alerts are silenced)")
    if (args.duration is None) == (args.ends is None):
        raise ValueError("give either --duration or --ends")
    now = now_ms()
    starts = iso_to_ms(args.starts) if args.starts else now
    ends = iso_to_ms(args.ends) if args.ends else starts + duration_ms(args.duration)
    if ends <= starts:
        raise ValueError("the silence ends before it starts")
    return {"v": 1, "id": uuid.uuid4().hex[:12], "matchers": [parse_matcher(text) for text in args.matcher],
            "starts_at": ms_to_iso(starts), "ends_at": ms_to_iso(ends),
            "created_by": args.created_by or getpass.getuser(), "comment": args.comment,
            "created_at": ms_to_iso(now), "expired_at": None}


def status(record: dict[str, Any], at_ms: int) -> str:
    if iso_to_ms(record["ends_at"]) <= at_ms:
        return "expired"
    return "active" if iso_to_ms(record["starts_at"]) <= at_ms else "pending"


def matchers_text(record: dict[str, Any]) -> str:
    return ",".join(f"{m['name']}{m['op']}{m['value']}" for m in record["matchers"])


async def _run(args: argparse.Namespace, settings: KafkaSettings) -> int:
    if args.action == "add":
        record = _new_silence(args)
        await publish_silence(settings, record)
        print(record["id"])
        return 0
    silences = await read_silences(settings)
    if args.action == "expire":
        if not args.id:
            return _fail("expire: give the silence id")
        found = silences.get(args.id)
        if found is None:
            return _fail(f"no silence {args.id!r}")
        record = found
        now = now_ms()
        if status(record, now) == "expired":
            print(f"{args.id} had already expired at {record['ends_at']}")
            return 0
        moment = ms_to_iso(now)
        ends = {"ends_at": moment, "expired_at": moment}
        if iso_to_ms(record["starts_at"]) > now:
            ends["starts_at"] = moment  # a silence that had not started: an empty range
        await publish_silence(settings, {**record, **ends})
        print(f"{args.id} expired at {moment}")
        return 0
    now = now_ms()
    shown = sorted((r for r in silences.values() if args.all or status(r, now) != "expired"),
                   key=lambda r: (r["starts_at"], r["id"]))
    for record in shown:
        if args.json:
            sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
        else:
            print(f"{record['id']}  {status(record, now):8} {record['starts_at']} → {record['ends_at']}  "
                  f"{matchers_text(record)}  by {record['created_by']}: {record['comment']}")
    sys.stdout.flush()
    return 0


def run(args: argparse.Namespace) -> int:
    settings = kafka_settings_from(args)
    if not settings.bootstrap:
        return _fail("set --bootstrap or TAILWATCH_KAFKA_BOOTSTRAP (silences live on the Kafka cluster)")
    try:
        return asyncio.run(_run(args, settings))
    except (MatcherError, ValueError, ValidationError) as error:
        return _fail(str(error))
    except (KafkaUnavailable, TimeoutError, OSError) as error:
        return _fail(str(error), 3)
