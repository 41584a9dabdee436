"""numpy vs pyarrow on the pane aggregation of one batch: group by (endpoint, pane), records per group,
(status, outcome) counts per group, each group's durations as a list. Same inputs, results checked equal; three
runs of 200 batches per shape. pyarrow is not a dependency: install it aside to run this, e.g.

    pip install --target /tmp/pyarrow 'pyarrow>=15,<24'
    PYTHONPATH=/tmp/pyarrow python scripts/time_numpy_vs_pyarrow.py
"""

from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa

Batch = dict[str, np.ndarray]


def make(n: int, endpoints: int, seed: int) -> Batch:
    rng = np.random.default_rng(seed)
    t = 1_767_700_800_000 + np.sort(rng.integers(0, 90_000, n))
    return {"endpoint": rng.integers(0, endpoints, n).astype(np.int32), "start": (t - t % 60_000),
            "status": rng.integers(0, 3, n).astype(np.int32), "outcome": rng.integers(0, 2, n).astype(np.int32),
            "duration": rng.lognormal(3, 1, n)}


def with_numpy(b: Batch) -> tuple[Any, ...]:
    starts, start_index = np.unique(b["start"], return_inverse=True)
    ids, group = np.unique(b["endpoint"].astype(np.int64) * len(starts) + start_index, return_inverse=True)
    counts = np.bincount(group, minlength=len(ids))
    cells = np.bincount(group * 6 + b["status"] * 2 + b["outcome"], minlength=len(ids) * 6)
    present = np.flatnonzero(cells)
    pairs = list(zip((present // 6).tolist(), (present % 6).tolist(), cells[present].tolist(), strict=True))
    values = b["duration"][np.argsort(group, kind="stable")].tolist()
    bounds = np.concatenate(([0], np.cumsum(counts))).tolist()
    lists = [values[a:z] for a, z in pairwise(bounds)]
    keys = [(int(k // len(starts)), int(starts[k % len(starts)])) for k in ids.tolist()]
    return keys, counts.tolist(), lists, len(pairs)


def with_arrow(b: Batch) -> tuple[Any, ...]:
    table = pa.table({"endpoint": b["endpoint"], "start": b["start"], "pair": b["status"] * 2 + b["outcome"],
                      "duration": b["duration"]})
    grouped = table.group_by(["endpoint", "start"], use_threads=False).aggregate(
        [("duration", "count"), ("duration", "list")]).sort_by([("endpoint", "ascending"), ("start", "ascending")])
    pairs = table.group_by(["endpoint", "start", "pair"], use_threads=False).aggregate([("pair", "count")])
    keys = list(zip(grouped["endpoint"].to_pylist(), grouped["start"].to_pylist(), strict=True))
    return keys, grouped["duration_count"].to_pylist(), grouped["duration_list"].to_pylist(), pairs.num_rows


def main() -> None:
    for n, endpoints in ((500, 8), (500, 500), (5000, 500)):
        batches = [make(n, endpoints, seed) for seed in range(200)]
        assert with_numpy(batches[0]) == with_arrow(batches[0]), "results differ"
        for run in range(3):
            took = {}
            for name, aggregate in (("numpy", with_numpy), ("pyarrow", with_arrow)):
                start = time.perf_counter()
                for batch in batches:
                    aggregate(batch)
                took[name] = (time.perf_counter() - start) / len(batches) * 1e6
            print(f"n={n} endpoints={endpoints} run {run}: numpy {took['numpy']:.0f} us/batch, "
                  f"pyarrow {took['pyarrow']:.0f} us/batch")


if __name__ == "__main__":
    main()
