"""A large capture is parsed in two halves at once (`agents.split_parse`): `replay` gives exactly what the serial
reader gives — metrics, alerts and counts — and the records come out in file order."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from agents.split_parse import MIN_SPLIT_ENV, _split_batches, record_batches
from pipeline.extract import Extractor
from pipeline.framing import object_start_after
from pipeline.log_columns import LogColumns, from_records
from pipeline.parsing import LogParser, ParseStats
from tests.captures import disordered_capture


def serial(data: bytes) -> tuple[list[dict[str, object]], ParseStats]:
    parser = LogParser("capture.json")
    records = parser.feed(data).records + parser.finish().records
    return records, parser.stats


def pane_rows(batches: Iterable[list[dict[str, Any]] | LogColumns]) -> list[tuple[Any, ...]]:
    """What the panes read of each record, in order, whether a batch came as parsed dicts or as columns."""
    rows = []
    for batch in batches:
        columns = batch if isinstance(batch, LogColumns) else from_records(batch)
        queries: dict[int, list[tuple[Any, ...]]] = {}
        d1 = columns.d1
        for i, record in enumerate(d1.record.tolist()):
            queries.setdefault(record, []).append((bool(d1.write[i]), bool(d1.connection_failed[i]),
                                                   float(d1.duration_ms[i]), int(d1.rows_read[i]),
                                                   int(d1.rows_written[i])))
        for i in range(len(columns)):
            duration, cpu = float(columns.duration_ms[i]), float(columns.cpu_ms[i])
            rows.append((columns.endpoints[columns.endpoint[i]], int(columns.event_time_ms[i]),
                         columns.statuses[columns.status[i]], columns.outcomes[columns.outcome[i]],
                         None if math.isnan(duration) else duration, None if math.isnan(cpu) else cpu,
                         tuple(queries.get(i, ()))))
    return rows


def split_read(path: Path, extractor: Extractor, totals: ParseStats, near: float,
               ) -> tuple[list[dict[str, Any]], list[LogColumns]]:
    """The first half's records (dicts) and the second half's batches (columns)."""
    first: list[dict[str, Any]] = []
    second: list[LogColumns] = []
    for batch in _split_batches(str(path), "capture.json", extractor, totals, near):
        if isinstance(batch, LogColumns):
            second.append(batch)
        else:
            assert not second  # the first half's records come first
            first.extend(batch)
    return first, second


@pytest.mark.parametrize("near", [0.1, 0.5, 0.93])
def test_split_records_and_counts_are_the_serial_ones(sample_capture: Path, tmp_path: Path, near: float) -> None:
    path = disordered_capture(sample_capture, tmp_path / "capture.json", copies=40)
    data = path.read_bytes()
    expected, expected_stats = serial(data)
    assert object_start_after(data, int(len(data) * near)) > 0  # a real cut: the second part goes to the child
    totals = ParseStats()
    first, second = split_read(path, Extractor(), totals, near)
    assert first == expected[:len(first)] and second  # the second half comes as columns
    assert pane_rows([first, *second]) == pane_rows([expected])
    assert totals == expected_stats and totals.records > 300


def test_small_files_and_stdin_are_read_serially(sample_capture: Path) -> None:
    totals = ParseStats()
    records = [r for batch in record_batches(str(sample_capture), "s", Extractor(), totals) for r in batch]
    assert records == serial(sample_capture.read_bytes())[0] and totals.events == 12


def replay(*args: str, split: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, MIN_SPLIT_ENV: "0" if split else str(1 << 40)}
    return subprocess.run([sys.executable, "-m", "agents.cli", "replay", *args], capture_output=True, text=True,
                          timeout=240, env=env, check=True)


def test_replay_split_prints_what_serial_replay_prints(sample_capture: Path, tmp_path: Path) -> None:
    capture = str(disordered_capture(sample_capture, tmp_path / "capture.json", copies=200))
    for args in (("--metrics",), ()):
        split, whole = replay(*args, capture, split=True), replay(*args, capture, split=False)
        assert split.stdout == whole.stdout and split.stderr == whole.stderr
        assert split.stdout.count("\n") >= 3


@pytest.mark.parametrize("window", [5, 64, 1000, 1 << 20])
def test_the_cut_point_is_found_across_read_windows(sample_capture: Path, tmp_path: Path, window: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is searched in windows, never read whole: the cut is the one a search of the whole data gives."""
    from agents import split_parse

    path = disordered_capture(sample_capture, tmp_path / "capture.json", copies=5)
    data = path.read_bytes()
    monkeypatch.setattr(split_parse, "CUT_WINDOW_BYTES", window)
    for near in (0, len(data) // 3, len(data) // 2, len(data) - 10):
        assert split_parse._cut_point(str(path), near) == object_start_after(data, near)


def test_a_first_half_without_events_is_no_input_without_events(sample_capture: Path, tmp_path: Path) -> None:
    junk = b"{\n    oops\n}\n" * 400  # pretty-shaped objects that do not parse: rejected, no event
    path = tmp_path / "capture.json"
    path.write_bytes(junk + sample_capture.read_bytes())
    expected, expected_stats = serial(path.read_bytes())
    totals = ParseStats()
    first, second = split_read(path, Extractor(), totals, 0.1)
    assert first == expected[:len(first)] and pane_rows([first, *second]) == pane_rows([expected])
    assert totals == expected_stats
    assert totals.inputs_without_events == 0 and totals.warnings == [] and totals.rejected == 400


def test_the_second_halfs_endpoints_are_decided_after_the_first_halfs(tmp_path: Path) -> None:
    """The endpoint catalog decides the second half's keys in the parent, after the first half's: `/api/tail`,
    learned from a 200 just before the cut, keeps its 404s after it, as in the serial reading; `/api/late` first
    answers 200 in the second half, so its earlier 404s fold into <unmatched> in both readings; and the cap counts
    the keys of both halves in file order."""
    import orjson

    from pipeline.endpoint_catalog import EndpointCatalog

    def event(t_ms: int, path: str, status: int) -> bytes:
        return orjson.dumps({"outcome": "ok", "scriptName": "w", "eventTimestamp": t_ms, "logs": [],
                             "exceptions": [], "event": {"request": {"url": f"https://x.example{path}",
                                                                     "method": "GET", "headers": {}},
                                                         "response": {"status": status}}},
                            option=orjson.OPT_INDENT_2) + b"\n"

    first = [("/api/learned", 200), ("/api/late", 404), ("/wp-login.php", 404)] * 30 + [("/api/tail", 200)]
    second = [("/api/tail", 404), ("/api/learned", 404), ("/api/late", 200), ("/api/late", 404), ("/.env", 404)]
    second += [(f"/new/k{chr(97 + i % 26)}{chr(97 + i // 26)}", 403) for i in range(40)]
    events = [event(1_767_700_800_000 + i, p, s) for i, (p, s) in enumerate(first + second * 30)]
    path = tmp_path / "capture.json"
    path.write_bytes(b"".join(events))
    cut = sum(map(len, events[:len(first)]))
    assert object_start_after(path.read_bytes(), cut - 2) == cut  # the child parses from the first /api/tail 404

    def extractor() -> Extractor:
        return Extractor(catalog=EndpointCatalog(max_endpoints=20))

    serial_extractor = extractor()
    parser = LogParser("capture.json", serial_extractor)
    expected = parser.feed(path.read_bytes()).records + parser.finish().records
    split_extractor = extractor()
    head, tail = split_read(path, split_extractor, ParseStats(), (cut - 2) / path.stat().st_size)
    assert len(head) == len(first) and pane_rows([head, *tail]) == pane_rows([expected])
    endpoints = [pair[1] for pair, *_rest in pane_rows([head, *tail])]
    assert set(endpoints[:len(first)]) == {"/api/learned", "/api/tail", "<unmatched>"}
    assert endpoints[len(first):len(first) + 3] == ["/api/tail", "/api/learned", "/api/late"]
    assert endpoints.count("/api/tail") == 31 and endpoints.count("/api/late") == 60
    assert "<overflow>" in endpoints  # 40 new keys in the second half, 17 under the cap of 20
    assert split_extractor.catalog.stats == serial_extractor.catalog.stats
