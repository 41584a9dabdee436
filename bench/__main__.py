"""`python -m bench <name> [options]`: run one benchmark, the module `bench/<name>.py` (its `main(argv) -> int`).

Any module added to this package with a `main(argv)` is a benchmark; `python -m bench` lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def benchmark_names() -> list[str]:
    here = str(Path(__file__).resolve().parent)
    return sorted(module.name for module in pkgutil.iter_modules([here]) if not module.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = benchmark_names()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in names:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"unknown benchmark: {argv[0]!r}", file=sys.stderr)
        print(f"usage: python -m bench {{{','.join(names)}}} [options]   (python -m bench <name> --help)",
              file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"bench.{argv[0]}")
    result: int = module.main(argv[1:])
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
