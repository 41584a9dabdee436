"""`tailwatch rules check PATH…`: validate rule files (schema, expressions, names) and list their rules.
`tailwatch rules test PATH…`: run rule unit-test files (log fixtures in, expected transitions out; a directory
means its `*.yaml`), like `promtool test rules`. Default: the tests of the default rules."""

from __future__ import annotations

import argparse
import sys
import time

from agents.rule_tests import DEFAULT_TESTS, RuleFileError, RuleTestFileError, rule_test_paths, run_test_file
from agents.rules_files import DEFAULT_RULES, load_rules


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["check", "test"],
                        help="check: validate and list rule files; test: run rule unit-test files")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="check: rule files (default: the spec's rules); test: test files or directories "
                             "(default: the default rules' tests)")


def run(args: argparse.Namespace) -> int:
    if args.action == "test":
        return run_tests(args.paths or [str(DEFAULT_TESTS)])
    failed = 0
    for path in args.paths or [str(DEFAULT_RULES)]:
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


def run_tests(paths: list[str]) -> int:
    files = rule_test_paths(paths)
    if not files:
        print(f"tailwatch rules test: no test files in {' '.join(paths)}", file=sys.stderr)
        return 2
    passed = failed = broken = 0
    started = time.monotonic()
    for path in files:
        try:
            result = run_test_file(path)
        except (RuleTestFileError, RuleFileError) as error:
            print(f"ERROR {error}")
            broken += 1
            continue
        for case in result.cases:
            if case.ok:
                passed += 1
                print(f"PASS  {path}: {case.name} ({len(case.alerts)} transitions)")
            else:
                failed += 1
                print(f"FAIL  {path}: {case.name}")
                for line in case.failures:
                    print(f"      {line}")
    print(f"{passed} passed, {failed} failed, {broken} files with errors "
          f"({len(files)} files, {time.monotonic() - started:.1f}s)")
    return 1 if failed or broken else 0
