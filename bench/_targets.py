"""How every benchmark ends: its ratio and target as the last line, and an exit code a script can test.

The last line reads `ratio=<x> target<=|>=<t> met|missed` (parse it with `line.split()[0].split("=")[1]`); the
benchmark exits 1 when any of its targets is missed. Not a benchmark itself (the leading underscore keeps it out
of `python -m bench`'s list).
"""

from __future__ import annotations

import os


def met(value: float, target: float, *, at_most: bool = False) -> bool:
    return value <= target if at_most else value >= target


def target_text(target: float, *, at_most: bool = False) -> str:
    return f"target{'<=' if at_most else '>='}{target}"


def verdict(ratio: float, target: float, *, at_most: bool = False, also_met: bool = True) -> int:
    """Print the last line; 0 when the ratio meets its target and `also_met` (the benchmark's other targets)."""
    ok = met(ratio, target, at_most=at_most)
    print(f"ratio={ratio:.3f} {target_text(target, at_most=at_most)} {'met' if ok else 'missed'}")
    return 0 if ok and also_met else 1


def load_text() -> str:
    return f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())} on {os.cpu_count()} CPUs"
