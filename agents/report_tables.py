"""The report as terminal tables (rich): one table per section of `pipeline.report.build_report`'s dict."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from pipeline.report.timeline import alert_scope
from pipeline.timestamps import ms_to_iso


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def _table(title: str, *columns: str, left: int = 1) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < left else "right", overflow="fold")
    return table


def _where(row: dict[str, Any]) -> str:
    return f'{row["endpoint"]} [dim]{row["service"]}[/dim]'


def render_tables(report: dict[str, Any], console: Console) -> None:
    window, totals = report["window"], report["totals"]
    console.print(f'[bold]tailwatch report[/bold] · {report["source"]} · {window["start"] or "no data"} – '
                  f'{window["end"] or ""} ({window["minutes"]} min) · {totals["requests"]:,} requests · '
                  f'error rate {_pct(totals["error_rate"])} · late dropped {totals["late_dropped"]:,}')

    table = _table("Performance Baselines (spec targets)", "endpoint", "p50 ms", "p95 ms", "p99 ms",
                   "RPS avg / peak / target", "verdict")
    for row in report["baselines"]:
        cells = []
        for key in ("p50", "p95", "p99"):
            ok = row["pass"][key]
            color = "dim" if ok is None else ("green" if ok else "red")
            cells.append(f'[{color}]{_num(row["measured"][key + "_ms"])}[/{color}] < {row["target"][key + "_ms"]:g}')
        measured = row["measured"]
        verdict = {"pass": "[green]pass[/green]", "fail": "[red]FAIL[/red]"}.get(row["verdict"], row["verdict"])
        table.add_row(row["name"], *cells, f'{_num(measured["rps_avg"], 2)} / {_num(measured["rps_peak_minute"], 2)}'
                      f' / {row["target"]["rps"]:g}', verdict)
    console.print(table)

    if report["services"] is not None:
        table = _table("Services (all endpoints, merged per minute)", "service", "endpts", "requests", "peak/min",
                       "success", "errors", "404s", "p50 / p95 / p99 ms", "CPU p95", "D1 queries", "D1 rows")
        for column in (table.columns[0], table.columns[7]):
            column.no_wrap = True  # service names are long and few: the counts give way
        for row in report["services"]:
            table.add_row(row["service"], _num(row["endpoints"]), _num(row["requests"]),
                          _num(row["peak_minute_requests"]), _pct(row["success_rate"]), _pct(row["error_rate"]),
                          _pct(row["ratio_404"]), " / ".join(_num(row[k]) for k in ("p50_ms", "p95_ms", "p99_ms")),
                          _num(row["cpu_p95_ms"]), _num(row["d1_queries"]), _num(row["d1_rows_read"]))
        console.print(table)
        late = sum(row["late_endpoint_panes"] for row in report["services"])
        if late:
            console.print(f"{late:,} endpoint panes reached the service stage after their minute had closed: "
                          "counted, not merged (their requests are in the endpoint rows only)")

    table = _table("Request volume, errors and response time by endpoint", "endpoint", "requests", "errors",
                   "error rate", "avg ms", "p50", "p95", "p99")
    for row in report["endpoints"]:
        table.add_row(_where(row), _num(row["requests"]), _num(row["errors"]), _pct(row["error_rate"]),
                      _num(row["avg_ms"]), _num(row["p50_ms"]), _num(row["p95_ms"]), _num(row["p99_ms"]))
    console.print(table)

    table = _table("Error rate by endpoint (> 1 %)", "endpoint", "errors", "responses", "error rate")
    for row in report["error_rates"]:
        table.add_row(_where(row), _num(row["errors"]), _num(row["responses"]), _pct(row["error_rate"]))
    console.print(table)

    table = _table("Slowest endpoints", "endpoint", "avg ms", "p95 ms")
    for row in report["slowest"]:
        table.add_row(_where(row), _num(row["avg_ms"]), _num(row["p95_ms"]))
    console.print(table)

    table = _table("Status code distribution", "status", "requests", "share")
    for row in report["status_codes"]:
        table.add_row(row["status"], _num(row["count"]), _pct(row["share"]))
    console.print(table)

    if report["top_templates"] is not None:
        table = _table("Top templates", "template slug", "views", "requests")
        for row in report["top_templates"]:
            table.add_row(row["slug"], _num(row["views"]), _num(row["requests"]))
        console.print(table)
    if report["top_errors"] is not None:
        table = _table("Top error messages", "message", "count")
        for row in report["top_errors"]:
            table.add_row(row["message"], _num(row["count"]))
        console.print(table)
    specs = report["build_specs"]
    if specs is not None:
        table = _table(f'Build-spec accesses: list {specs["list_requests"]:,}, detail {specs["detail_requests"]:,} '
                       f'over {specs["distinct_runs"]:,} runs', "run id", "views", "requests")
        for row in specs["top_runs"]:
            table.add_row(row["run_id"], _num(row["views"]), _num(row["requests"]))
        console.print(table)
    if report["alerts"] is not None:
        table = _table(f'Alert timeline ({report["alerts"]["events"]} events)', "rule", "endpoint or service",
                       "severity", "firing", "until", left=5)
        for span in report["alerts"]["spans"]:
            table.add_row(span["rule"], alert_scope(span), span["severity"], _clock(span["start_ms"]),
                          _clock(span["end_ms"]) + (" (open)" if span["open"] else ""))
        console.print(table)


def _clock(ms: int | None) -> str:
    return "–" if ms is None else ms_to_iso(ms)[:16].replace("T", " ")
