"""The report as one self-contained HTML page: the spec's four dashboard widgets, the alert timeline and the
tables, with inline CSS and inline SVG (no script, no network). The live dashboard serves the same page with a
few lines of script that fetch the fresh `<main>` every few seconds (`refresh_url`)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from pipeline.report.svg import PALETTE, latency_lines, pie, status_color, time_stacked_bars, timeline
from pipeline.report.svg import stacked_bars as bars
from pipeline.report.timeline import alert_scope

MAX_VOLUME_SERIES = 7
MAX_LATENCY_CHARTS = 8

CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#fafafa;color:#222}
header{background:#1f2d3d;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c8d3de;font-size:13px}
main{padding:16px 24px;max-width:1400px}
.kpis{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:12px}
.kpi{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:8px 14px;min-width:120px}
.kpi b{display:block;font-size:20px}.kpi span{color:#666;font-size:12px}
.widget{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:10px 14px;margin:0 0 14px}
.widget h2{font-size:15px;margin:0 0 8px}.widget p.note{color:#666;font-size:12px;margin:4px 0 0}
.grid{display:flex;flex-wrap:wrap;gap:8px}
table{border-collapse:collapse;font-size:12px;margin:4px 0}th,td{padding:3px 8px;border-bottom:1px solid #eee;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
.pass{color:#2e7d32;font-weight:600}.fail{color:#c62828;font-weight:600}.nodata{color:#888}
.cols{display:flex;flex-wrap:wrap;gap:14px}.cols>.widget{flex:1 1 420px}
"""

LIVE_SCRIPT = """
(function(){var url=%s,last=null;function tick(){fetch(url,{cache:"no-store"}).then(function(r){
if(!r.ok)throw new Error("HTTP "+r.status);return r.text();}).then(function(html){if(html!==last){last=html;
document.getElementById("report").innerHTML=html;}document.body.dataset.refreshed=String(Date.now());
}).catch(function(e){document.body.dataset.refreshError=String(e);});}setInterval(tick,%d);})();
"""


def _labels(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """Endpoint labels; the service is added only where one endpoint is served by several services."""
    services: dict[str, set[str]] = {}
    for row in rows:
        services.setdefault(row["endpoint"], set()).add(row["service"])
    return {(row["service"], row["endpoint"]): row["endpoint"] if len(services[row["endpoint"]]) == 1
            else f'{row["endpoint"]} ({row["service"]})' for row in rows}


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    return f"{value:,}{unit}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1, name: str = "") -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    if not rows:
        body = f'<tr><td class="l nodata" colspan="{len(headers)}">none</td></tr>'
    return f'<table data-table="{name}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _widget(title: str, content: str, name: str, note: str = "") -> str:
    extra = f'<p class="note">{escape(note)}</p>' if note else ""
    return f'<section class="widget" data-widget="{name}"><h2>{escape(title)}</h2>{content}{extra}</section>'


def _volume(report: dict[str, Any], labels: dict[tuple[str, str], str]) -> str:
    series = report["series"]["endpoints"]
    ranked = sorted(series, key=lambda s: -sum(s["requests"]))
    stacks: list[tuple[str, str, Sequence[float]]] = [
        (labels[(s["service"], s["endpoint"])], PALETTE[i % len(PALETTE)], s["requests"])
        for i, s in enumerate(ranked[:MAX_VOLUME_SERIES])]
    rest = ranked[MAX_VOLUME_SERIES:]
    if rest:
        other = [sum(s["requests"][i] for s in rest) for i in range(len(report["series"]["minutes"]))]
        stacks.append((f"{len(rest)} more", "#bab0ac", other))
    return time_stacked_bars("volume", report["series"]["minutes"], stacks, "requests / min")


def _error_bars(report: dict[str, Any], labels: dict[tuple[str, str], str]) -> str:
    rows = [r for r in report["endpoints"] if r["errors"] and r["responses"]]
    rows.sort(key=lambda r: -r["errors"] / r["responses"])
    codes = sorted({code for r in rows for code in r["status"] if code == "failed" or code[:1] in "45"})
    stacks = [(code if code != "failed" else "failed, no status", status_color(code),
               [100 * r["status"].get(code, 0) / r["responses"] for r in rows]) for code in codes]
    return bars("errors", [labels[(r["service"], r["endpoint"])] for r in rows], stacks, "% of responses",
                height=420, fmt="{:.2f}%", rotate_labels=True)


def _latency(report: dict[str, Any], labels: dict[tuple[str, str], str]) -> str:
    series = sorted(report["series"]["endpoints"], key=lambda s: -sum(s["requests"]))[:MAX_LATENCY_CHARTS]
    minutes = report["series"]["minutes"]
    charts = [latency_lines(f"latency-{i}", labels[(s["service"], s["endpoint"])], minutes,
                            {key: s[key] for key in ("p50_ms", "p95_ms", "p99_ms")}) for i, s in enumerate(series)]
    return '<div class="grid">' + "".join(charts) + "</div>" if charts else latency_lines("latency-0", "", [], {})


def _status_pie(report: dict[str, Any]) -> str:
    return pie("status", [(row["status"], status_color(row["status"]), row["count"])
                          for row in report["status_codes"]])


def _timeline(report: dict[str, Any]) -> str:
    alerts = report["alerts"]
    if alerts is None:
        return '<p class="note">no alert events read (replay rules with --rules, or read the alerts topic)</p>'
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for span in alerts["spans"]:
        rows.setdefault((span["rule"], alert_scope(span)), []).extend(span["segments"])
    window = report["window"]
    return timeline("alerts", [(rule, endpoint, segments) for (rule, endpoint), segments in sorted(rows.items())],
                    window["start_ms"], window["end_ms"])


def _kpis(report: dict[str, Any]) -> str:
    totals = report["totals"]
    alerts = report["alerts"]
    cards = [("requests", _fmt(totals["requests"])), ("error rate", _pct(totals["error_rate"])),
             ("services", _fmt(totals["services"])), ("endpoints", _fmt(totals["endpoints"])),
             ("minutes", _fmt(report["window"]["minutes"])),
             ("alert spans", "–" if alerts is None else _fmt(len(alerts["spans"]))),
             ("late dropped", _fmt(totals["late_dropped"]))]
    return '<div class="kpis">' + "".join(f"<div class=\"kpi\"><b>{value}</b><span>{escape(name)}</span></div>"
                                          for name, value in cards) + "</div>"


def _baselines(report: dict[str, Any]) -> str:
    rows = []
    for row in report["baselines"]:
        target, measured, checks = row["target"], row["measured"], row["pass"]
        cells = [escape(row["name"])]
        for key in ("p50", "p95", "p99"):
            ok = checks[key]
            klass = "nodata" if ok is None else ("pass" if ok else "fail")
            cells.append(f'<span class="{klass}">{_fmt(measured[key + "_ms"])}</span> / &lt;{target[key + "_ms"]:g}')
        cells += [f'{_fmt(measured["rps_avg"])} (peak {_fmt(measured["rps_peak_minute"])}) / {target["rps"]:g}',
                  f'<span class="{row["verdict"].replace(" ", "")}">{row["verdict"]}</span>']
        rows.append(cells)
    return _table(["endpoint", "p50 ms / target", "p95 ms / target", "p99 ms / target", "RPS avg (peak) / target",
                   "verdict"], rows, name="baselines")


SERVICE_HEADERS = ("service", "endpoints", "requests", "peak / min", "success", "error rate", "404 rate", "avg ms",
                   "p50", "p95", "p99", "CPU p95 ms", "D1 queries", "D1 rows read", "D1 p95 ms", "D1 failures")


def _services(report: dict[str, Any]) -> str:
    """The service rows (every endpoint of a service merged per minute by the service stage) and their volume."""
    rows = report["services"]
    if rows is None:
        return ('<p class="note">no service panes read (the service stage writes them: a replay, or the '
                '&lt;prefix&gt;.metrics.service topic)</p>')
    table = _table(SERVICE_HEADERS, [
        [escape(r["service"]), _fmt(r["endpoints"]), _fmt(r["requests"]), _fmt(r["peak_minute_requests"]),
         _pct(r["success_rate"]), _pct(r["error_rate"]), _pct(r["ratio_404"]), _fmt(r["avg_ms"]), _fmt(r["p50_ms"]),
         _fmt(r["p95_ms"]), _fmt(r["p99_ms"]), _fmt(r["cpu_p95_ms"]), _fmt(r["d1_queries"]), _fmt(r["d1_rows_read"]),
         _fmt(r["d1_p95_ms"]), _fmt(r["d1_connection_failures"])] for r in rows], name="services")
    late = sum(r["late_endpoint_panes"] for r in rows)
    if late:
        table += (f'<p class="note" data-late-endpoint-panes="{late}">{late:,} endpoint panes reached the service '
                  "stage after their minute had closed: counted, not merged (their requests are in the endpoint "
                  "rows only)</p>")
    series = report["series"]["services"] or []
    if not any(sum(s["requests"]) for s in series):
        return table
    stacks: list[tuple[str, str, Sequence[float]]] = [(s["service"], PALETTE[i % len(PALETTE)], s["requests"])
                                                      for i, s in enumerate(series)]
    return table + time_stacked_bars("service-volume", report["series"]["minutes"], stacks, "requests / min",
                                     height=220)


def _tables(report: dict[str, Any], labels: dict[tuple[str, str], str]) -> str:
    def label(row: dict[str, Any]) -> str:
        return escape(labels.get((row["service"], row["endpoint"]), row["endpoint"]))

    endpoints = _table(["endpoint", "requests", "errors (4xx+5xx)", "error rate", "avg ms", "p50", "p95", "p99"],
                       [[label(r), _fmt(r["requests"]), _fmt(r["errors"]), _pct(r["error_rate"]), _fmt(r["avg_ms"]),
                         _fmt(r["p50_ms"]), _fmt(r["p95_ms"]), _fmt(r["p99_ms"])] for r in report["endpoints"]],
                       name="endpoints")
    error_rates = _table(["endpoint", "errors", "responses", "error rate"],
                         [[label(r), _fmt(r["errors"]), _fmt(r["responses"]), _pct(r["error_rate"])]
                          for r in report["error_rates"]], name="error_rates")
    slowest = _table(["endpoint", "avg ms", "p95 ms"], [[label(r), _fmt(r["avg_ms"]), _fmt(r["p95_ms"])]
                                                       for r in report["slowest"]], name="slowest")
    parts = [_widget("Services (all endpoints, merged per minute)", _services(report), "t-services",
                     "peak / min = the busiest minute's requests (what service-wide rules compare); rates over "
                     "responses; percentiles from the service panes' merged t-digests"),
             _widget("Request volume, errors and response time by endpoint", endpoints, "t-endpoints",
                     "errors = 4xx + 5xx (a Worker failure without a status counts as 5xx); rates over responses"),
             '<div class="cols">',
             _widget("Error rate by endpoint (> 1 %)", error_rates, "t-error-rates"),
             _widget("Slowest endpoints (by p95)", slowest, "t-slowest"), "</div>", '<div class="cols">']
    templates, errors, specs = report["top_templates"], report["top_errors"], report["build_specs"]
    unavailable = '<p class="note">needs the records: `tailwatch report FILE…` or `tailwatch report --live`</p>'
    parts.append(_widget("Top templates", unavailable if templates is None else _table(
        ["template slug", "views", "requests"],
        [[escape(t["slug"]), _fmt(t["views"]), _fmt(t["requests"])] for t in templates], name="templates"),
        "t-templates", "views = 2xx/3xx answers on /api/public/factory/templates/:slug"))
    parts.append(_widget("Top error messages", unavailable if errors is None else _table(
        ["message", "count"], [[escape(e["message"]), _fmt(e["count"])] for e in errors], name="top_errors"),
        "t-errors"))
    if specs is None:
        spec_html = unavailable
    else:
        spec_html = (f'<p>list: {_fmt(specs["list_requests"])} requests ({_fmt(specs["list_views"])} answered); '
                     f'detail: {_fmt(specs["detail_requests"])} requests over {_fmt(specs["distinct_runs"])} runs</p>'
                     + _table(["run id", "views", "requests"], [[escape(r["run_id"]), _fmt(r["views"]),
                                                                  _fmt(r["requests"])] for r in specs["top_runs"]],
                              name="build_specs"))
    parts.append(_widget("Build-spec accesses", spec_html, "t-build-specs"))
    parts.append("</div>")
    return "".join(parts)


def render_main(report: dict[str, Any]) -> str:
    """The page's `<main>` content: what the live dashboard swaps in on refresh."""
    labels = _labels(report["endpoints"])
    window = report["window"]
    span = f'{window["start"]} – {window["end"]}' if window["start"] else "no data yet"
    return "".join([
        f'<p class="note" data-window>{escape(span)} · source: {escape(report["source"])}</p>',
        _kpis(report),
        _widget("Performance baselines (spec targets)", _baselines(report), "t-baselines",
                "measured percentiles from merged pane t-digests; a target passes when the measured value is below"),
        _widget("1. Request volume by endpoint", _volume(report, labels), "volume", "requests per minute"),
        _widget("2. Error rate by endpoint and status", _error_bars(report, labels), "errors",
                "share of the endpoint's responses, stacked by status code ≥ 400"),
        _widget("3. Response time p50 / p95 / p99", _latency(report, labels), "latency",
                "per minute, log scale; busiest endpoints first"),
        _widget("4. Status code distribution", _status_pie(report), "status"),
        _widget("Alert timeline (firing spans per rule and endpoint or service)", _timeline(report), "alerts"),
        _tables(report, labels),
    ])


def render_html(report: dict[str, Any], title: str = "tailwatch report", refresh_url: str | None = None,
                refresh_ms: int = 5000) -> str:
    script = "" if refresh_url is None else f"<script>{LIVE_SCRIPT % (_js_string(refresh_url), refresh_ms)}</script>"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><meta name=\"viewport\" content=\"width=device-width\">"
            f"<link rel=\"icon\" href=\"data:,\"><style>{CSS}</style></head><body>"
            f"<header><h1>{escape(title)}</h1><p>per-service and per-endpoint metrics from wrangler tail · "
            "tailwatch</p></header>"
            f'<main id="report">{render_main(report)}</main>{script}</body></html>\n')


def _js_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\u003c") + '"'
