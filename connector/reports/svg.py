"""Charts as inline SVG strings: no script, no font or stylesheet to fetch, readable by a screen
reader (role="img" with a title and a description) and with a native tooltip on every mark.

Geometry only: the page's CSS (html.py) styles axes and text through the classes used here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

WIDTH, HEIGHT = 640, 280
# Okabe-Ito: told apart with the common colour-vision deficiencies; dashes tell series apart in print.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
DASHES = ("", "7 4", "2 3", "9 3 2 3")
WITHIN, OVER = "#0072B2", "#D55E00"


def colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def nice_step(span: float, ticks: int = 4) -> float:
    """A round step (1, 2 or 5 times a power of ten) that cuts `span` into about `ticks` parts."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _open(chart_id: str, title: str, desc: str, height: int = HEIGHT) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="{chart_id}-t {chart_id}-d">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>',
    ]


def _legend(
    names: Sequence[str], x0: float, y: float, swatch: Callable[[int, float, float], str]
) -> list[str]:
    out, x = [], x0
    for i, name in enumerate(names):
        out.append(swatch(i, x, y))
        out.append(f'<text class="legend" x="{_num(x + 22)}" y="{_num(y + 4)}">{escape(name)}</text>')
        x += 34 + 7 * len(name)
    return out


def _y_axis(
    left: float,
    right: float,
    top: float,
    bottom: float,
    top_value: float,
    step: float,
    label: Callable[[float], str],
) -> list[str]:
    out = []
    count = round(top_value / step)
    for k in range(count + 1):
        value = k * step
        y = bottom - (bottom - top) * value / top_value
        out.append(f'<line class="grid" x1="{_num(left)}" x2="{_num(right)}" y1="{_num(y)}" y2="{_num(y)}"/>')
        out.append(
            f'<text class="tick" x="{_num(left - 6)}" y="{_num(y + 4)}" text-anchor="end">'
            f"{escape(label(value))}</text>"
        )
    return out


def _x_labels(labels: Sequence[str], left: float, band: float, y: float) -> list[str]:
    # Label every n-th bar so that labels do not run into each other (about 6.5 px a character at
    # the charts' 11 px), e.g. every 5th week under a year of weeks.
    widest = max((len(text) for text in labels), default=0) * 6.5 + 8
    every = max(1, math.ceil(widest / band))
    return [
        f'<text class="tick" x="{_num(left + (i + 0.5) * band)}" y="{_num(y)}" text-anchor="middle">'
        f"{escape(text)}</text>"
        for i, text in enumerate(labels)
        if i % every == 0
    ]


def line_chart(
    chart_id: str,
    title: str,
    desc: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    point_label: Callable[[float], str],
) -> str:
    """Shares 0..1 per x (week), one line per series; a None is a gap in its line."""
    left, right, top, bottom = 52, WIDTH - 12, 40, HEIGHT - 30
    band = (right - left) / max(1, len(x_labels))
    out = _open(chart_id, title, desc)
    out += _y_axis(left, right, top, bottom, 1.0, 0.25, lambda v: f"{v * 100:.0f}%")
    out += _x_labels(x_labels, left, band, bottom + 18)
    out += _legend(
        [name for name, _ in series],
        left,
        16,
        lambda i, x, y: (
            f'<line x1="{_num(x)}" x2="{_num(x + 18)}" y1="{_num(y)}" y2="{_num(y)}" stroke="{colour(i)}" '
            f'stroke-width="3" stroke-dasharray="{DASHES[i % len(DASHES)]}"/>'
        ),
    )
    for i, (name, values) in enumerate(series):
        points = [
            (left + (j + 0.5) * band, bottom - (bottom - top) * v, v, j)
            for j, v in enumerate(values)
            if v is not None
        ]
        runs: list[list[tuple[float, float]]] = []
        previous = None
        for x, y, _, j in points:
            if previous is None or j != previous + 1:
                runs.append([])
            runs[-1].append((x, y))
            previous = j
        for run in runs:
            d = " ".join(f"{'M' if k == 0 else 'L'}{_num(x)},{_num(y)}" for k, (x, y) in enumerate(run))
            out.append(
                f'<path d="{d}" fill="none" stroke="{colour(i)}" stroke-width="2" '
                f'stroke-dasharray="{DASHES[i % len(DASHES)]}"/>'
            )
        for x, y, v, j in points:
            out.append(
                f'<circle cx="{_num(x)}" cy="{_num(y)}" r="3.5" fill="{colour(i)}">'
                f"<title>{escape(f'{name}, {x_labels[j]}: {point_label(v)}')}</title></circle>"
            )
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(
    chart_id: str,
    title: str,
    desc: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    fills: Sequence[str] | None = None,
    marker: tuple[float, str] | None = None,
) -> str:
    """Counts per x, the series stacked. `fills` colours each x's bar (histograms: within or over the
    target); `marker` is a vertical line at a position in bar units (0 = left edge of the first bar)."""
    left, right, top, bottom = 52, WIDTH - 12, 40, HEIGHT - 30
    band = (right - left) / max(1, len(x_labels))
    totals = [sum(values[j] for _, values in series) for j in range(len(x_labels))]
    step = max(1.0, nice_step(max(totals, default=0) or 1))  # counts: whole steps
    top_value = step * math.ceil((max(totals, default=0) or 1) / step)
    out = _open(chart_id, title, desc)
    out += _y_axis(left, right, top, bottom, top_value, step, lambda v: f"{v:,.0f}")
    out += _x_labels(x_labels, left, band, bottom + 18)
    if len(series) > 1:
        out += _legend(
            [name for name, _ in series],
            left,
            16,
            lambda i, x, y: (
                f'<rect x="{_num(x)}" y="{_num(y - 6)}" width="18" height="12" fill="{colour(i)}"/>'
            ),
        )
    base = [0] * len(x_labels)
    for i, (name, values) in enumerate(series):
        for j, count in enumerate(values):
            if not count:
                continue
            y0 = bottom - (bottom - top) * base[j] / top_value
            y1 = bottom - (bottom - top) * (base[j] + count) / top_value
            fill = fills[j] if fills else colour(i)
            what = f"{x_labels[j]}: {count:,}" if len(series) == 1 else f"{name}, {x_labels[j]}: {count:,}"
            out.append(
                f'<rect x="{_num(left + j * band + band * 0.12)}" y="{_num(y1)}" '
                f'width="{_num(band * 0.76)}" height="{_num(y0 - y1)}" fill="{fill}">'
                f"<title>{escape(what)}</title></rect>"
            )
            base[j] += count
    if marker is not None:
        position, label = marker
        x = left + position * band
        out.append(f'<line class="marker" x1="{_num(x)}" x2="{_num(x)}" y1="{top - 8}" y2="{bottom}"/>')
        anchor = "end" if x > (left + right) / 2 else "start"
        dx = -4 if anchor == "end" else 4
        out.append(
            f'<text class="marker-label" x="{_num(x + dx)}" y="{top - 10 + 12}" '
            f'text-anchor="{anchor}">{escape(label)}</text>'
        )
    out.append(f'<line class="axis" x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}"/>')
    out.append("</svg>")
    return "\n".join(out)


def availability_floor(values: Sequence[float]) -> float:
    """Where the availability axis starts: a round step below the lowest value, with a quarter of
    room. At 0..100% every bar of a 99.9% service would look full."""
    gap = max((1.0 - min(values, default=1.0)) * 1.25, 0.001)
    return max(0.0, 1.0 - nice_step(gap, 1))


def _percent_digits(step: float) -> int:
    """Decimals that tell ticks `step` apart as percentages: 0.005 -> 1 (99.5%)."""
    return max(0, -math.floor(math.log10(step * 100) + 1e-9))


def uptime_chart(
    chart_id: str, title: str, desc: str, rows: Sequence[tuple[str, float | None, float | None, bool | None]]
) -> str:
    """One horizontal bar per (label, availability, guaranteed, met) and a tick at its guarantee."""
    row_h, top, label_w = 28, 16, 190
    height = top + row_h * len(rows) + 40
    left, right, bottom = label_w, WIDTH - 70, top + row_h * len(rows)
    shown = [v for _, a, g, _ in rows for v in (a, g) if v is not None]
    floor = availability_floor(shown)
    span = 1.0 - floor

    def x_of(value: float) -> float:
        return left + (right - left) * (max(value, floor) - floor) / span

    out = _open(chart_id, title, desc, height)
    # The span is 1, 2 or 5 times a power of ten: cut it into round steps that end at 100%.
    step = span / (4 if f"{span:e}".startswith("2") else 5)
    for k in range(round(span / step) + 1):
        value = floor + k * step
        x = x_of(value)
        out.append(f'<line class="grid" x1="{_num(x)}" x2="{_num(x)}" y1="{top}" y2="{bottom}"/>')
        out.append(
            f'<text class="tick" x="{_num(x)}" y="{bottom + 16}" text-anchor="middle">'
            f"{value * 100:.{_percent_digits(step)}f}%</text>"
        )
    out.append(
        f'<text class="tick" x="{left}" y="{bottom + 32}">scale starts at '
        f"{floor * 100:.{_percent_digits(step)}f}%, not 0</text>"
    )
    for i, (label, availability, guaranteed, met) in enumerate(rows):
        y = top + i * row_h
        out.append(
            f'<text class="tick" x="{left - 8}" y="{_num(y + row_h / 2 + 4)}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        if availability is not None:
            fill = OVER if met is False else WITHIN
            verdict = {True: "met", False: "below the guarantee", None: "no guarantee verdict"}[met]
            tip = f"{label}: {availability * 100:.3f}% available, {verdict}"
            out.append(
                f'<rect x="{left}" y="{_num(y + 5)}" width="{_num(x_of(availability) - left)}" '
                f'height="{row_h - 10}" fill="{fill}"><title>{escape(tip)}</title></rect>'
            )
            out.append(
                f'<text class="tick" x="{_num(right + 6)}" y="{_num(y + row_h / 2 + 4)}">'
                f"{availability * 100:.3f}%</text>"
            )
        if guaranteed is not None:
            x = x_of(guaranteed)
            out.append(
                f'<line class="marker" x1="{_num(x)}" x2="{_num(x)}" y1="{_num(y + 1)}" '
                f'y2="{_num(y + row_h - 1)}"><title>{escape(f"guaranteed {guaranteed * 100:.3f}%")}'
                f"</title></line>"
            )
    out.append("</svg>")
    return "\n".join(out)
