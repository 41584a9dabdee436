"""`tailwatch rules check PATH…`: validate rule files (schema, expressions, names) and list their rules.
`tailwatch rules test PATH…`: run rule unit-test files (log fixtures in, expected transitions out; a directory
means its `*.yaml`), like `promtool test rules`. Default: the tests of the default rules."""

from __future__ import annotations

import argparse
import sys
import time

from agents.commands.common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, InputError, add_action, check_input_files
from agents.rule_tests import DEFAULT_TESTS, RuleFileError, RuleTestFileError, rule_test_paths, run_test_file
from agents.rules_files import DEFAULT_RULES, load_rules


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_action(parser, {"check": "validate rule files and list their rules",
                        "test": "run rule unit-test files (log fixtures in, expected transitions out)"})
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="check: rule files (default: the spec's rules); test: test files or directories "
                             "(default: the default rules' tests)")


def run(args: argparse.Namespace) -> int:
    if args.action == "test":
        return run_tests(args.paths or [str(DEFAULT_TESTS)])
    failed = unreadable = 0
    for path in args.paths or [str(DEFAULT_RULES)]:
        try:
            check_input_files([path])
            loaded = load_rules(path)
        except InputError as error:  # nothing to check: an input error (exit 2)
            print(f"tailwatch rules check: {error}", file=sys.stderr)
            unreadable += 1
            continue
        except RuleFileError as error:  # what `check` is for: the check failed (exit 1)
            print(error, file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: {len(loaded.compiled)} rules OK (sha256 {loaded.sha256[:12]})")
        for rule in loaded.compiled:
            tiers = " | ".join(f"{tier.severity}: {tier.condition.text}" for tier in rule.tiers)
            timing = rule.timing
            scope = ", per service" if rule.service_wide else ""
            print(f"  {rule.spec.name:26} window {rule.window_ms // 60_000}m, for {timing.for_ms // 60_000}m, "
                  f"keep {timing.keep_firing_for_ms // 60_000}m{scope}  {tiers}")
    return EXIT_USAGE if unreadable else EXIT_CHECK_FAILED if failed else EXIT_OK


def run_tests(paths: list[str]) -> int:
    """Exit 1 when a case fails or the rules it tests are invalid, 2 when a test file is missing or invalid."""
    files = rule_test_paths(paths)
    if not files:
        raise InputError(f"test: no test files (*.yaml) in {' '.join(paths)}")
    passed = failed = broken = rule_errors = 0
    started = time.monotonic()
    for path in files:
        try:
            result = run_test_file(path)
        except (RuleTestFileError, RuleFileError) as error:
            print(f"ERROR {error}", file=sys.stderr)
            if isinstance(error, RuleTestFileError):
                broken += 1
            else:
                rule_errors += 1
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
    print(f"{passed} passed, {failed} failed, {broken + rule_errors} files with errors "
          f"({len(files)} files, {time.monotonic() - started:.1f}s)")
    return EXIT_USAGE if broken else EXIT_CHECK_FAILED if failed or rule_errors else EXIT_OK
