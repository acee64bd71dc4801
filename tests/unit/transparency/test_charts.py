"""Server-rendered SVG charts: accessible names, honest bar sizes, escaping, and the empty case."""

import pytest
from lxml import etree

from transparency import charts

SVG = "{http://www.w3.org/2000/svg}"


def _parse(chart):
    return etree.fromstring(str(charts.render(chart)).encode())


def _monthly(*series, categories=("Jan\n2026", "Feb", "Mar")):
    return charts.Chart(
        id="chart-test",
        title="Requests each month",
        description="Bar chart of requests each month.",
        categories=categories,
        series=tuple(charts.Series(name, values) for name, values in series),
        unit="requests",
    )


@pytest.mark.parametrize(
    ("maximum", "expected"),
    [
        (0, (1, 1)),
        (1, (1, 1)),
        (3, (3, 1)),
        (7, (8, 2)),
        (10, (10, 5)),
        (12, (15, 5)),
        (95, (100, 50)),
        (101, (150, 50)),
        (3.4, (4, 1)),
    ],
)
def test_axis_tops_are_round_and_cover_the_largest_value(maximum, expected):
    top, step = charts.nice_scale(maximum)
    assert (top, step) == expected
    assert top >= maximum


def test_axis_below_one_uses_decimal_steps():
    top, step = charts.nice_scale(0.3)
    assert step == pytest.approx(0.1)
    assert top == pytest.approx(0.3)


def test_the_svg_is_an_image_named_by_its_title_and_described_by_its_desc():
    svg = _parse(_monthly(("Requests", (2, 4, 1))))
    assert svg.tag == f"{SVG}svg"
    assert svg.get("role") == "img"
    title_id, desc_id = svg.get("aria-labelledby").split()
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert (title.get("id"), desc.get("id")) == (title_id, desc_id) == ("chart-test-title", "chart-test-desc")
    assert title.text == "Requests each month"
    # The description carries the numbers, for people who cannot see the bars.
    assert desc.text.startswith("Bar chart of requests each month.")
    assert "Requests: 7 in all, most in Feb (4)." in desc.text
    assert svg.get("viewBox").startswith("0 0 420 ")


def test_bar_heights_are_proportional_to_the_values():
    svg = _parse(_monthly(("Requests", (2, 4, 1))))
    bars = svg.findall(f"{SVG}rect")
    heights = [float(b.get("height")) for b in bars]
    assert heights[1] == pytest.approx(2 * heights[0])
    assert heights[0] == pytest.approx(2 * heights[2])
    # Each bar says what it is when pointed at.
    assert [b.find(f"{SVG}title").text for b in bars] == [
        "Jan 2026, Requests: 2 requests",
        "Feb, Requests: 4 requests",
        "Mar, Requests: 1 requests",
    ]


def test_two_series_are_told_apart_by_pattern_and_legend_not_only_colour():
    svg = _parse(_monthly(("Approved", (3, 1, 0)), ("Turned down", (1, 0, 2))))
    patterns = svg.findall(f"{SVG}defs/{SVG}pattern")
    assert [p.get("id") for p in patterns] == ["chart-test-pattern-1"]
    fills = {r.get("fill") for r in svg.findall(f"{SVG}rect") if r.find(f"{SVG}title") is not None}
    assert fills == {charts.PALETTE[0], "url(#chart-test-pattern-1)"}
    texts = ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
    assert "Approved" in texts and "Turned down" in texts


def test_month_labels_break_over_two_lines():
    svg = _parse(_monthly(("Requests", (1, 1, 1))))
    first_label = next(t for t in svg.iter(f"{SVG}text") if t.find(f"{SVG}tspan") is not None)
    assert [span.text for span in first_label.findall(f"{SVG}tspan")] == ["Jan", "2026"]


def test_text_is_escaped():
    chart = charts.Chart(
        id="chart-x",
        title="<script>alert(1)</script>",
        description="A & B",
        categories=("<b>TRE</b>",),
        series=(charts.Series("Median days", (2,)),),
        unit="days",
        horizontal=True,
    )
    markup = str(charts.render(chart))
    assert "<script>" not in markup and "<b>" not in markup
    svg = etree.fromstring(markup.encode())
    assert svg.find(f"{SVG}title").text == "<script>alert(1)</script>"


def test_an_empty_chart_says_so():
    svg = _parse(_monthly(("Requests", (0, 0, 0))))
    texts = ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
    assert "No data for this period" in texts
    assert "There is nothing to show for this period." in svg.find(f"{SVG}desc").text


def test_a_horizontal_chart_labels_each_bar_and_writes_its_value():
    chart = charts.Chart(
        id="chart-wait",
        title="Median time to a decision",
        description="Horizontal bar chart.",
        categories=("TRE A", "A TRE with a very long name indeed, longer than fits"),
        series=(charts.Series("Median days", (12.5, 3)),),
        unit="days",
        horizontal=True,
    )
    svg = _parse(chart)
    texts = ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
    assert "TRE A" in texts and "12.5 days" in texts and "3 days" in texts
    assert "A TRE with a very…" in texts  # shortened in the picture; whole in the table
    widths = [float(r.get("width")) for r in svg.findall(f"{SVG}rect")]
    assert widths[0] == pytest.approx(widths[1] * 12.5 / 3, abs=0.5)  # coordinates are written to 0.1
    desc = svg.find(f"{SVG}desc").text
    assert "Highest: TRE A, 12.5 days." in desc
    assert "Lowest: A TRE with a very long name indeed, longer than fits, 3 days." in desc


def test_a_horizontal_chart_with_no_categories_renders():
    chart = charts.Chart(
        id="c", title="T", description="D.", categories=(), series=(charts.Series("S", ()),), horizontal=True
    )
    svg = _parse(chart)
    assert "No data for this period" in ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]


def test_series_must_match_the_categories():
    with pytest.raises(ValueError, match="has 2 values for 3 categories"):
        _monthly(("Requests", (1, 2)))


def test_numbers_are_written_plainly():
    assert charts.number(3) == "3"
    assert charts.number(3.0) == "3"
    assert charts.number(2.25) == "2.2"
    assert charts.number(12.5) == "12.5"


def test_a_median_of_zero_days_is_data_not_an_empty_chart():
    chart = charts.Chart(
        id="c",
        title="Median time",
        description="D.",
        categories=("TRE A",),
        series=(charts.Series("Median days", (0,)),),
        unit="days",
        horizontal=True,
    )
    svg = _parse(chart)
    texts = ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
    assert "No data for this period" not in texts and "0 days" in texts
    assert "TRE A: 0 days." in svg.find(f"{SVG}desc").text
