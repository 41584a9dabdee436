"""Counting a batch of columns into its open panes, vectorized: the one place records become pane counts.

The records are grouped by (endpoint, pane start) with one stable sort of one integer key (`_groups`), counted per
group with `bincount` (records, (status, outcome) pairs, D1 queries, reads, writes, connection failures, rows), and
each group's values (durations, CPU times, D1 durations) are handed to its pane as one slice, in the batch's order.
Python then runs once per group and per distinct (status, outcome) pair of a group, not per record.

The result equals counting record by record: counts are exact integers; a pane's `duration_sum_ms` adds each
group's durations with Python's `sum` in record order, as the row code did; the raw values kept for the digests are
the same values (the digest is built from them sorted, at close), so snapshots are the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.log_columns import LogColumns
from pipeline.panes import OpenPane, status_class

PaneKey = tuple[str, str, int]  # (service, endpoint, pane start)


def count_into(batch: LogColumns, starts: np.ndarray, pane_ms: int, pane_of: Callable[[PaneKey], OpenPane]) -> None:
    """Count `batch` (whose records' pane starts, multiples of `pane_ms`, are `starts`) into the panes `pane_of`
    gives (creating them)."""
    if not len(batch):
        return
    order, bounds, group_keys = _groups(batch.endpoint, starts, pane_ms)  # by endpoint, then pane start
    records = np.diff(bounds).tolist()
    bounds_of = bounds.tolist()
    endpoints = batch.endpoints
    panes = [pane_of((*endpoints[endpoint], start)) for endpoint, start in group_keys]
    for pane, count in zip(panes, records, strict=True):
        pane.total += count
    group = np.repeat(np.arange(len(panes)), records)  # each record's group, in sorted order
    _count_pairs(batch.status[order], batch.outcome[order], group, batch, panes)
    _add_values(batch.duration_ms[order], bounds_of, panes, durations=True)
    _add_values(batch.cpu_ms[order], bounds_of, panes, durations=False)
    if len(batch.d1):
        group_of_record = np.empty(len(batch), dtype=np.int64)
        group_of_record[order] = group
        _count_d1(batch, group_of_record, panes)


def _groups(endpoint: np.ndarray, starts: np.ndarray, pane_ms: int) -> tuple[np.ndarray, np.ndarray,
                                                                              list[tuple[int, int]]]:
    """The records grouped by (endpoint, pane start) with one stable sort: the order (each group's records in batch
    order), the groups' bounds in it, and each group's (endpoint code, pane start), sorted."""
    low = int(starts.min())
    panes = (int(starts.max()) - low) // pane_ms + 1
    if panes * (int(endpoint.max()) + 1) < 2**62:
        pane_index = (starts - low) // pane_ms
    else:  # pane starts centuries apart: ranked instead (fewer than the records)
        distinct, pane_index = np.unique(starts, return_inverse=True)
        panes = len(distinct)
    key = endpoint.astype(np.int64) * panes + pane_index
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    firsts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    bounds = np.append(firsts, len(order))
    keys = list(zip(endpoint[order[firsts]].tolist(), starts[order[firsts]].tolist(), strict=True))
    return order, bounds, keys


def _count_pairs(status: np.ndarray, outcome: np.ndarray, group: np.ndarray, batch: LogColumns,
                 panes: list[OpenPane]) -> None:
    """Status classes, statuses and outcomes: one count per (group, status, outcome) that occurs."""
    outcomes = len(batch.outcomes)
    pairs = len(batch.statuses) * outcomes
    cells = np.bincount(group * pairs + status.astype(np.int64) * outcomes + outcome,
                        minlength=len(panes) * pairs)
    present = np.flatnonzero(cells)
    meaning = [(status_class(status, outcome), status, outcome) for status in batch.statuses
               for outcome in batch.outcomes]  # pair code -> (class, status, outcome), once per batch
    for pane_index, pair, count in zip((present // pairs).tolist(), (present % pairs).tolist(),
                                       cells[present].tolist(), strict=True):
        pane = panes[pane_index]
        klass, status_code, outcome_name = meaning[pair]
        classes = pane.classes
        classes[klass] = classes.get(klass, 0) + count
        if status_code is not None:
            pane.status[status_code] = pane.status.get(status_code, 0) + count
        pane.outcome[outcome_name] = pane.outcome.get(outcome_name, 0) + count


def _add_values(ordered: np.ndarray, bounds: list[int], panes: list[OpenPane], *, durations: bool) -> None:
    """Each group's values (NaN: none) to its pane, in record order; durations also to the pane's sum and count."""
    missing = np.isnan(ordered)
    if missing.any():
        kept_before = np.concatenate(([0], np.cumsum(~missing))).tolist()
        bounds = [kept_before[b] for b in bounds]
        ordered = ordered[~missing]
    values = ordered.tolist()
    for pane, start, end in zip(panes, bounds, bounds[1:], strict=False):
        if start == end:
            continue
        chunk = values[start:end]
        if durations:
            pane.durations.extend(chunk)
            pane.duration_sum_ms += sum(chunk)
            pane.duration_count += end - start
        else:
            pane.cpu.extend(chunk)


def _count_d1(batch: LogColumns, group: np.ndarray, panes: list[OpenPane]) -> None:
    d1 = batch.d1
    query_group = group[d1.record]
    size = len(panes)

    queries, writes, failures = (np.bincount(groups, minlength=size).tolist() for groups in (
        query_group, query_group[d1.write], query_group[d1.connection_failed]))
    rows_read = _int_sums(query_group, d1.rows_read, size)
    rows_written = _int_sums(query_group, d1.rows_written, size)
    order = np.argsort(query_group, kind="stable")
    durations = d1.duration_ms[order].tolist()
    start = 0
    for index, pane in enumerate(panes):
        count = queries[index]
        if not count:
            continue
        pane.d1_queries += count
        pane.d1_writes += writes[index]
        pane.d1_reads += count - writes[index]
        pane.d1_connection_failures += failures[index]
        pane.d1_rows_read += rows_read[index]
        pane.d1_rows_written += rows_written[index]
        pane.d1_durations.extend(durations[start:start + count])
        start += count


def _int_sums(group: np.ndarray, values: np.ndarray, size: int) -> list[int]:
    """Exact integer sums per group: bincount's float weights while every sum stays below 2**53, else `add.at`."""
    if not len(values) or int(values.max()) * len(values) < 2**53:
        exact: list[int] = np.bincount(group, weights=values, minlength=size).astype(np.int64).tolist()
        return exact
    sums = np.zeros(size, dtype=np.int64)
    np.add.at(sums, group, values)
    big: list[int] = sums.tolist()
    return big
