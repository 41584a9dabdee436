"""On-demand benchmarks: `python -m bench <name> [options]` runs `bench/<name>.py`'s `main(argv)`.

Each measures a tailwatch path against a floor measured in the same run and prints, as its last line,
`ratio=<x>` (see each module's docstring for what x is and its target).
"""
