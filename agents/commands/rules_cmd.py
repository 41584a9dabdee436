"""`tailwatch rules check PATH…`: validate rule files (schema, expressions, names) and list their rules."""

from __future__ import annotations

import argparse
import sys

from agents.rules_files import DEFAULT_RULES, RuleFileError, load_rules


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["check"], help="check: validate and list")
    parser.add_argument("paths", nargs="*", default=[str(DEFAULT_RULES)], metavar="PATH",
                        help="rule files (default: the spec's rules)")


def run(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.paths:
        try:
            loaded = load_rules(path)
        except RuleFileError as error:
            print(error, file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: {len(loaded.compiled)} rules OK (sha256 {loaded.sha256[:12]})")
        for rule in loaded.compiled:
            tiers = " | ".join(f"{tier.severity}: {tier.condition.text}" for tier in rule.tiers)
            timing = rule.timing
            print(f"  {rule.spec.name:26} window {rule.window_ms // 60_000}m, for {timing.for_ms // 60_000}m, "
                  f"keep {timing.keep_firing_for_ms // 60_000}m  {tiers}")
    return 1 if failed else 0
