"""Accessible bar charts, rendered on the server as inline SVG.

Each chart is one `role="img"` element named by its own `<title>` and described by a `<desc>` that
states what it shows and its main numbers, so a screen reader gets the gist without the picture;
pages put the same numbers in a table next to it. No script, no inline styles (the CSP forbids
them): colours are presentation attributes, and a second series is hatched as well as coloured so
it can be told apart without colour.
"""

import math
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import mark_safe

# NHS.UK blue, pink, green and purple: each at least 4.5:1 against white.
PALETTE = ("#005eb8", "#ae2573", "#007f3b", "#330072")
TEXT_COLOUR = "#212b32"
GRID_COLOUR = "#d8dde0"
FONT_SIZE = 13

# A narrow canvas, so that on a phone the text stays readable without scrolling sideways.
WIDTH = 420
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP = 40, 8, 16
LEGEND_HEIGHT = 28
PLOT_HEIGHT = 180
LABEL_LINE = 16
ROW_HEIGHT = 34
LABEL_MAX_CHARS = 22


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class Chart:
    id: str  # unique on its page: the ids of the title and description derive from it
    title: str
    description: str
    categories: tuple[str, ...]  # a "\n" breaks a label over two lines
    series: tuple[Series, ...]
    unit: str = ""  # what the values count, for the description and tooltips
    horizontal: bool = False

    def __post_init__(self):
        for series in self.series:
            if len(series.values) != len(self.categories):
                raise ValueError(
                    f"Series {series.name!r} has {len(series.values)} values for {len(self.categories)} categories."
                )

    @property
    def is_empty(self):
        """Nothing to draw: no categories, or (counting charts) only zeros. A median of 0 days is data."""
        if self.horizontal:
            return not self.categories
        return not self.categories or not any(v for s in self.series for v in s.values)


def number(value):
    """12 for whole numbers, 12.5 otherwise."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def nice_scale(maximum, steps=4):
    """(top, step): a round axis top at or above `maximum`, in about `steps` round steps."""
    if maximum <= 0:
        return 1, 1
    raw = maximum / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if maximum >= 1 and step < 1:
        step = 1
    return step * math.ceil(maximum / step - 1e-9), step


def _ticks(top, step):
    count = round(top / step)
    return [step * i for i in range(count + 1)]


def _one_line(label):
    return " ".join(label.split("\n"))


def summary(chart):
    """One or two sentences with the chart's main numbers, for its description."""
    if chart.is_empty:
        return "There is nothing to show for this period."
    unit = f" {chart.unit}" if chart.unit else ""
    if chart.horizontal:
        values = chart.series[0].values
        pairs = sorted(zip(values, chart.categories, strict=True), reverse=True)
        high, low = pairs[0], pairs[-1]
        if len(pairs) == 1:
            return f"{_one_line(high[1])}: {number(high[0])}{unit}."
        return (
            f"Highest: {_one_line(high[1])}, {number(high[0])}{unit}. "
            f"Lowest: {_one_line(low[1])}, {number(low[0])}{unit}."
        )
    parts = []
    for series in chart.series:
        peak = max(range(len(series.values)), key=series.values.__getitem__)
        parts.append(
            f"{series.name}: {number(sum(series.values))} in all, most in "
            f"{_one_line(chart.categories[peak])} ({number(series.values[peak])})."
        )
    return " ".join(parts)


def _fill(chart, index):
    return f"url(#{chart.id}-pattern-{index})" if index else PALETTE[0]


def _defs(chart):
    patterns = []
    for index in range(1, len(chart.series)):
        colour = PALETTE[index % len(PALETTE)]
        patterns.append(
            f'<pattern id="{escape(chart.id)}-pattern-{index}" width="8" height="8" '
            f'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
            f'<rect width="8" height="8" fill="{colour}"/>'
            f'<line x1="0" y1="0" x2="0" y2="8" stroke="#ffffff" stroke-width="3"/></pattern>'
        )
    return f"<defs>{''.join(patterns)}</defs>" if patterns else ""


def _text(x, y, content, *, anchor="start", extra=""):
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{FONT_SIZE}" '
        f'fill="{TEXT_COLOUR}"{extra}>{escape(content)}</text>'
    )


def _legend(chart):
    if len(chart.series) < 2:
        return [], 0
    parts, x = [], MARGIN_LEFT
    for index, series in enumerate(chart.series):
        parts.append(
            f'<rect x="{x}" y="{MARGIN_TOP - 2}" width="14" height="14" fill="{_fill(chart, index)}" '
            f'stroke="{PALETTE[index % len(PALETTE)]}"/>'
        )
        parts.append(_text(x + 20, MARGIN_TOP + 10, series.name))
        x += 36 + 7 * len(series.name)
    return parts, LEGEND_HEIGHT


def _empty_note(x, y):
    return _text(x, y, "No data for this period", anchor="middle", extra=' font-style="italic"')


def _vertical(chart):
    legend, legend_height = _legend(chart)
    lines = max((c.count("\n") + 1 for c in chart.categories), default=1)
    top = MARGIN_TOP + legend_height
    height = top + PLOT_HEIGHT + 8 + lines * LABEL_LINE + 4
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    baseline = top + PLOT_HEIGHT
    maximum = max((v for s in chart.series for v in s.values), default=0)
    axis_top, step = nice_scale(maximum)
    scale = PLOT_HEIGHT / axis_top
    parts = list(legend)
    for tick in _ticks(axis_top, step):
        y = baseline - tick * scale
        parts.append(
            f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{WIDTH - MARGIN_RIGHT}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        parts.append(_text(MARGIN_LEFT - 6, y + 5, number(tick), anchor="end"))
    count = max(len(chart.categories), 1)
    group = plot_width / count
    bar = group * 0.8 / max(len(chart.series), 1)
    unit = f" {chart.unit}" if chart.unit else ""
    for i, category in enumerate(chart.categories):
        left = MARGIN_LEFT + i * group + group * 0.1
        for index, series in enumerate(chart.series):
            value = series.values[i]
            bar_height = value * scale
            x, y = left + index * bar, baseline - bar_height
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{bar_height:.1f}" '
                f'fill="{_fill(chart, index)}"><title>{escape(_one_line(category))}, {escape(series.name)}: '
                f"{number(value)}{escape(unit)}</title></rect>"
            )
            if len(chart.series) == 1 and value:
                parts.append(_text(x + bar / 2, y - 4, number(value), anchor="middle"))
        label_lines = category.split("\n")
        spans = "".join(
            f'<tspan x="{left + group * 0.4:.1f}" dy="{0 if n == 0 else LABEL_LINE}">{escape(line)}</tspan>'
            for n, line in enumerate(label_lines)
        )
        parts.append(
            f'<text x="{left + group * 0.4:.1f}" y="{baseline + 8 + LABEL_LINE - 4}" text-anchor="middle" '
            f'font-size="{FONT_SIZE}" fill="{TEXT_COLOUR}">{spans}</text>'
        )
    parts.append(
        f'<line x1="{MARGIN_LEFT}" y1="{baseline}" x2="{WIDTH - MARGIN_RIGHT}" y2="{baseline}" '
        f'stroke="{TEXT_COLOUR}" stroke-width="1"/>'
    )
    if chart.is_empty:
        parts.append(_empty_note(MARGIN_LEFT + plot_width / 2, top + PLOT_HEIGHT / 2))
    return height, parts


def _short(label):
    label = _one_line(label)
    if len(label) <= LABEL_MAX_CHARS:
        return label
    cut = label[: LABEL_MAX_CHARS - 1]
    if " " in cut:  # end on a whole word
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


def _horizontal(chart):
    series = chart.series[0] if chart.series else Series("", ())
    longest = max((len(_short(c)) for c in chart.categories), default=0)
    left = min(12 + 7 * longest, 170)
    rows = max(len(chart.categories), 1)
    top = MARGIN_TOP
    plot_height = rows * ROW_HEIGHT
    height = top + plot_height + 8 + LABEL_LINE + 8
    value_room = 72  # for the value written after the longest bar
    plot_width = WIDTH - left - MARGIN_RIGHT - value_room
    axis_top, step = nice_scale(max(series.values, default=0))
    scale = plot_width / axis_top
    unit = f" {chart.unit}" if chart.unit else ""
    parts = []
    for tick in _ticks(axis_top, step):
        x = left + tick * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_height}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        parts.append(_text(x, top + plot_height + 8 + LABEL_LINE - 2, number(tick), anchor="middle"))
    for i, category in enumerate(chart.categories):
        value = series.values[i]
        y = top + i * ROW_HEIGHT + ROW_HEIGHT * 0.15
        bar_height = ROW_HEIGHT * 0.7
        width = value * scale
        parts.append(_text(left - 8, y + bar_height / 2 + 5, _short(category), anchor="end"))
        parts.append(
            f'<rect x="{left}" y="{y:.1f}" width="{width:.1f}" height="{bar_height:.1f}" '
            f'fill="{PALETTE[0]}"><title>{escape(_one_line(category))}: {number(value)}{escape(unit)}</title></rect>'
        )
        parts.append(_text(left + width + 6, y + bar_height / 2 + 5, f"{number(value)}{unit}"))
    parts.append(
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_height}" stroke="{TEXT_COLOUR}" stroke-width="1"/>'
    )
    if chart.is_empty:
        parts.append(_empty_note(WIDTH / 2, top + plot_height / 2 + 5))
    return height, parts


def render(chart):
    """The chart as an inline `<svg>` element, safe to place in a template."""
    height, parts = _horizontal(chart) if chart.horizontal else _vertical(chart)
    chart_id = escape(chart.id)
    description = f"{chart.description} {summary(chart)}".strip()
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="public-chart" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'role="img" aria-labelledby="{chart_id}-title {chart_id}-desc">'
        f'<title id="{chart_id}-title">{escape(chart.title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>'
        f"{_defs(chart)}{''.join(parts)}</svg>"
    )
    return mark_safe(svg)  # noqa: S308  (every piece of text above is escaped)
