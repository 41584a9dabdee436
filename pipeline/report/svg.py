"""Inline SVG charts for the report page, drawn in Python: no script, no network, hover text via `<title>`.

Every chart is `<svg class="chart" data-chart=NAME>`; every drawn datum is an element with class `mark` and a
`data-value`, so a browser test can count what was drawn. Times are UTC minutes (`HH:MM`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

from pipeline.timestamps import ms_to_iso

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
LATENCY_COLORS = {"p50_ms": "#59a14f", "p95_ms": "#f28e2b", "p99_ms": "#e15759"}
SEVERITY_COLORS = {"CRITICAL": "#c0392b", "HIGH": "#e67e22", "MEDIUM": "#f1c40f", "WARNING": "#f1c40f"}
FONT = "font-family:system-ui,sans-serif;font-size:11px"


def status_color(code: str) -> str:
    shades = {"2": ("#2e7d32", "#66bb6a", "#a5d6a7"), "3": ("#1565c0", "#64b5f6"),
              "4": ("#ef6c00", "#ffa726", "#ffcc80", "#f57f17", "#fbc02d"),
              "5": ("#b71c1c", "#e53935", "#ef9a9a", "#880e4f", "#d81b60")}
    if code == "failed":
        return "#4a0000"
    if code == "none":
        return "#9e9e9e"
    family = shades.get(code[:1])
    if family is None:
        return "#795548"
    return family[int(code[1:] or 0) % len(family)] if code[1:].isdigit() else family[0]


def hhmm(ms: int) -> str:
    return ms_to_iso(ms)[11:16]


def _svg(name: str, width: int, height: int, body: list[str]) -> str:
    return (f'<svg class="chart" data-chart="{name}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" style="{FONT}" role="img">' + "".join(body)
            + "</svg>")


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(text)}</text>'


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _time_ticks(minutes: Sequence[int], x_of: Any, y: float) -> list[str]:
    if not minutes:
        return []
    step = max(1, math.ceil(len(minutes) / 8))
    return [_text(x_of(i), y, hhmm(minutes[i]), "middle") for i in range(0, len(minutes), step)]


def _empty(name: str, width: int, message: str) -> str:
    return _svg(name, width, 40, [_text(8, 24, message, extra='fill="#777"')])


def _legend(items: Sequence[tuple[str, str]], x: float, y: float, width: float) -> tuple[list[str], float]:
    """Legend swatches flowing left to right; returns the elements and the height used."""
    out: list[str] = []
    cx, cy = x, y
    for label, color in items:
        w = 16 + 6.2 * len(label)
        if cx + w > x + width and cx > x:
            cx, cy = x, cy + 16
        out.append(f'<rect x="{cx:.1f}" y="{cy - 9:.1f}" width="10" height="10" fill="{color}"/>')
        out.append(_text(cx + 14, cy, label))
        cx += w + 10
    return out, cy - y + 16


def stacked_bars(name: str, categories: Sequence[str], stacks: Sequence[tuple[str, str, Sequence[float]]],
                 y_label: str, width: int = 900, height: int = 300, fmt: str = "{:,.0f}",
                 rotate_labels: bool = False) -> str:
    """Bars per category, stacked by series: `stacks` is (label, color, one value per category)."""
    if not categories or not stacks:
        return _empty(name, width, "no data")
    legend, legend_h = _legend([(label, color) for label, color, _ in stacks], 60, 14, width - 70)
    top = 20 + legend_h
    bottom = 150 if rotate_labels else 30
    plot_h = height - top - bottom
    left, right = 60, width - 10
    totals = [sum(values[i] for _, _, values in stacks) for i in range(len(categories))]
    y_max = _nice_max(max(totals))
    slot = (right - left) / len(categories)
    bar_w = max(1.0, slot * 0.8)
    body = [*legend]
    for k in range(5):
        value = y_max * k / 4
        y = top + plot_h - plot_h * k / 4
        body.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        body.append(_text(left - 4, y + 4, fmt.format(value), "end"))
    body.append(_text(12, top + plot_h / 2, y_label, "middle",
                      f'transform="rotate(-90 12 {top + plot_h / 2:.1f})"'))
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - bar_w) / 2
        base = top + plot_h
        for label, color, values in stacks:
            value = values[i]
            if value <= 0:
                continue
            h = plot_h * value / y_max
            base -= h
            body.append(f'<rect class="mark" data-value="{value:g}" x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" '
                        f'height="{h:.1f}" fill="{color}"><title>{escape(category)} · {escape(label)}: '
                        f'{escape(fmt.format(value))}</title></rect>')
    if rotate_labels:
        for i, category in enumerate(categories):
            x = left + i * slot + slot / 2
            y = top + plot_h + 8
            body.append(_text(x, y, _short(category, 34), "end", f'transform="rotate(-60 {x:.1f} {y:.1f})"'))
    return _svg(name, width, height, body)


def time_stacked_bars(name: str, minutes: Sequence[int], stacks: Sequence[tuple[str, str, Sequence[float]]],
                      y_label: str, width: int = 900, height: int = 300) -> str:
    chart = stacked_bars(name, [hhmm(m) for m in minutes], stacks, y_label, width, height)
    if not minutes or not stacks:
        return chart
    left, right = 60, width - 10
    slot = (right - left) / len(minutes)
    ticks = _time_ticks(minutes, lambda i: left + i * slot + slot / 2, height - 12)
    return chart.replace("</svg>", "".join(ticks) + "</svg>")


def _short(label: str, limit: int = 42) -> str:
    return label if len(label) <= limit else "…" + label[-(limit - 1):]


def latency_lines(name: str, title: str, minutes: Sequence[int], lines: dict[str, Sequence[float | None]],
                  width: int = 440, height: int = 200) -> str:
    """p50/p95/p99 over time on a log scale (latency spans orders of magnitude during incidents)."""
    values = [v for series in lines.values() for v in series if v is not None and v > 0]
    if not minutes or not values:
        return _empty(name, width, f"{title}: no latency data")
    left, right, top, bottom = 50, width - 10, 34, height - 22
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    if hi <= lo:
        hi = lo * 10
    span = math.log10(hi) - math.log10(lo)

    def x_of(i: int) -> float:
        return left + (right - left) * (i / max(1, len(minutes) - 1))

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * (math.log10(max(v, lo)) - math.log10(lo)) / span

    body = [_text(left, 12, title, extra='font-weight="600"')]
    legend, _ = _legend([(key.removesuffix("_ms"), LATENCY_COLORS.get(key, "#333")) for key in lines], left, 26,
                        right - left)
    body.extend(legend)
    decade = lo
    while decade <= hi * 1.0001:
        y = y_of(decade)
        body.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        body.append(_text(left - 4, y + 4, f"{decade:g} ms" if decade < 1000 else f"{decade / 1000:g} s", "end"))
        decade *= 10
    for key, series in lines.items():
        points = [(x_of(i), y_of(v), v) for i, v in enumerate(series) if v is not None and v > 0]
        if not points:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        color = LATENCY_COLORS.get(key, "#333")
        label = key.removesuffix("_ms")
        body.append(f'<polyline class="mark" data-value="{len(points)}" data-series="{label}" points="{path}" '
                    f'fill="none" stroke="{color}" stroke-width="1.5"><title>{escape(title)} {label}</title>'
                    f'</polyline>')
    body.extend(_time_ticks(minutes, x_of, height - 6))
    return _svg(name, width, height, body)


def pie(name: str, slices: Sequence[tuple[str, str, float]], width: int = 440, height: int = 260) -> str:
    total = sum(value for _, _, value in slices)
    if total <= 0:
        return _empty(name, width, "no data")
    cx, cy, r = 130.0, height / 2, min(110.0, height / 2 - 10)
    body: list[str] = []
    angle = -math.pi / 2
    for label, color, value in slices:
        if value <= 0:
            continue
        share = value / total
        tip = f"<title>{escape(label)}: {value:,.0f} ({share:.2%})</title>"
        if share >= 0.999999:
            body.append(f'<circle class="mark" data-value="{value:g}" cx="{cx}" cy="{cy}" r="{r}" '
                        f'fill="{color}">{tip}</circle>')
            continue
        end = angle + 2 * math.pi * share
        x1, y1 = cx + r * math.cos(angle), cy + r * math.sin(angle)
        x2, y2 = cx + r * math.cos(end), cy + r * math.sin(end)
        large = 1 if share > 0.5 else 0
        body.append(f'<path class="mark" data-value="{value:g}" d="M{cx:.1f},{cy:.1f} L{x1:.2f},{y1:.2f} '
                    f'A{r:.1f},{r:.1f} 0 {large} 1 {x2:.2f},{y2:.2f} Z" fill="{color}" stroke="#fff" '
                    f'stroke-width="0.5">{tip}</path>')
        angle = end
    y = 24.0
    for label, color, value in slices[:14]:
        body.append(f'<rect x="260" y="{y - 9:.1f}" width="10" height="10" fill="{color}"/>')
        body.append(_text(276, y, f"{label}  {value:,.0f} ({value / total:.1%})"))
        y += 16
    return _svg(name, width, height, body)


def _tick_step_ms(span_ms: int) -> int:
    for minutes in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440):
        if span_ms / (minutes * 60_000) <= 10:
            return minutes * 60_000
    return 1440 * 60_000


def timeline(name: str, rows: Sequence[tuple[str, str, Sequence[dict[str, Any]]]], start_ms: int | None,
             end_ms: int | None, width: int = 1000) -> str:
    """One row per (rule, endpoint): its firing segments as bars colored by severity."""
    if not rows or start_ms is None or end_ms is None or end_ms <= start_ms:
        return _empty(name, width, "no alerts fired")
    label_w, right, row_h, top = 440, width - 10, 18, 26
    height = top + row_h * len(rows) + 24

    def x_of(ms: int) -> float:
        return label_w + (right - label_w) * (min(max(ms, start_ms), end_ms) - start_ms) / (end_ms - start_ms)

    legend, _ = _legend(list(SEVERITY_COLORS.items())[:3], label_w, 14, right - label_w)
    body = [*legend]
    for i, (rule, endpoint, segments) in enumerate(rows):
        y = top + i * row_h
        if i % 2 == 0:
            body.append(f'<rect x="0" y="{y:.1f}" width="{width}" height="{row_h}" fill="#f6f6f6"/>')
        body.append(_text(4, y + 13, _short(rule, 30)))
        body.append(_text(190, y + 13, _short(endpoint, 40), extra='fill="#555"'))
        label = f"{rule} · {endpoint}"
        for segment in segments:
            x1, x2 = x_of(segment["start_ms"]), x_of(segment["end_ms"])
            color = SEVERITY_COLORS.get(segment["severity"].upper(), "#8e44ad")
            minutes = (segment["end_ms"] - segment["start_ms"]) / 60_000
            body.append(f'<rect class="mark" data-value="{minutes:g}" x="{x1:.1f}" y="{y + 3:.1f}" '
                        f'width="{max(x2 - x1, 2):.1f}" height="{row_h - 6}" fill="{color}" rx="2">'
                        f'<title>{escape(label)}: {escape(segment["severity"])} {hhmm(segment["start_ms"])}–'
                        f'{hhmm(segment["end_ms"])} ({minutes:g} min)</title></rect>')
    step = _tick_step_ms(end_ms - start_ms)
    for tick in range(start_ms - start_ms % step + (step if start_ms % step else 0), end_ms + 1, step):
        body.append(f'<line x1="{x_of(tick):.1f}" x2="{x_of(tick):.1f}" y1="{top}" y2="{height - 20}" '
                    f'stroke="#ddd"/>')
        body.append(_text(x_of(tick), height - 6, hhmm(tick), "middle"))
    return _svg(name, width, height, body)
