"""The dashboard's survival charts in a real browser (issue 16 item 20, issue 19 item 10):
each number at risk sits under its time tick (positions read from the drawn page and from
uPlot's own scale), nothing is clipped at 1280 px or on a 390 px phone, after a resize too,
and each chart names the table of its numbers, which the keyboard opens."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_accessibility import AXE, AXE_RUN, AXE_TAGS
from tests.factories import PASSWORD
from tests.page_walk import seed_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOLERANCE_PX = 2

# For one chart: the x ticks uPlot drew (its axis splits) with their page position, and each
# at-risk number's text, data and bounding box, with the boxes of what must contain them.
MEASURE = """key => {
  const u = window.trialdeskCharts && window.trialdeskCharts[key];
  if (!u) return null;
  const over = u.over.getBoundingClientRect();
  const box = el => { const r = el.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const strip = document.getElementById("risk-" + key);
  const [min, max] = [u.scales.x.min, u.scales.x.max];
  return {
    ticks: u.axes[0]._splits.filter(v => v >= min && v <= max).map(v => ({x: v, left: over.left + u.valToPos(v, "x")})),
    numbers: Array.from(strip.querySelectorAll(".risk-row span")).map(s => ({x: Number(s.dataset.x), text: s.textContent, box: box(s)})),
    strip: box(strip),
    card: box(strip.closest("section")),
    canvas: box(u.root.querySelector("canvas")),
    chartWidth: u.width,
    elementWidth: document.getElementById("chart-" + key).clientWidth,
  };
}"""


def _inside(inner, outer):  # type: ignore[no-untyped-def]
    return (
        inner["left"] >= outer["left"] - 0.5
        and inner["right"] <= outer["right"] + 0.5
        and inner["top"] >= outer["top"] - 0.5
        and inner["bottom"] <= outer["bottom"] + 0.5
    )


def _check(page, survival, width):  # type: ignore[no-untyped-def]
    for key in ("os", "pfs"):
        # Drawn at the element's current width (after a resize, once uPlot has redrawn).
        page.wait_for_function(
            "key => { const u = window.trialdeskCharts && window.trialdeskCharts[key];"
            " return u && Math.abs(u.width - Math.max(200, document.getElementById('chart-' + key).clientWidth)) < 1; }",
            arg=key,
        )
        m = page.evaluate(MEASURE, key)
        assert m is not None, f"{key} @{width}px: no chart drawn"
        served = {g["t_days"] / 30.4375: g["at_risk"] for g in survival[key]["at_risk_grid"]}
        assert len(m["ticks"]) >= 3, f"{key} @{width}px: {m['ticks']}"
        assert [n["x"] for n in m["numbers"]] == [t["x"] for t in m["ticks"]], (
            f"{key} @{width}px: one number per tick, no other"
        )
        for tick, number in zip(m["ticks"], m["numbers"], strict=True):
            served_x = min(served, key=lambda x, t=tick: abs(x - t["x"]))
            assert abs(served_x - tick["x"]) < 1e-9, f"{key} @{width}px: tick {tick['x']} is not a grid month"
            assert number["text"] == str(served[served_x]), (
                f"{key} @{width}px: {number} vs the API's {served[served_x]}"
            )
            centre = (number["box"]["left"] + number["box"]["right"]) / 2
            assert abs(centre - tick["left"]) <= TOLERANCE_PX, (
                f"{key} @{width}px: the number at risk {number['text']} is centred at {centre:.1f}px, "
                f"its tick at {tick['left']:.1f}px"
            )
            assert _inside(number["box"], m["strip"]), f"{key} @{width}px: {number} clipped by {m['strip']}"
        assert _inside(m["strip"], m["card"]), f"{key} @{width}px: the at-risk row leaves its card"
        assert _inside(m["canvas"], m["card"]), f"{key} @{width}px: the chart leaves its card"
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"@{width}px: {overflow}px of sideways scrolling"


def test_at_risk_numbers_sit_under_their_ticks_and_each_chart_names_its_table(page):  # type: ignore[no-untyped-def]
    trial, users = seed_world()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(users["investigator"].username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your trials")).to_be_visible()
    survival = page.request.get(f"/api/v1/trials/{trial.pk}/survival/").json()
    url = f"/trials/{trial.pk}/dashboard/"

    page.goto(url)
    _check(page, survival, 1280)
    charts = page.locator("div.grid", has=page.locator("#chart-os"))
    charts.screenshot(path=str(ARTIFACTS / "survival-charts-1280.png"))
    page.set_viewport_size({"width": 390, "height": 844})  # the same page, resized: redrawn
    _check(page, survival, 390)
    page.goto(url)  # and opened on the phone
    _check(page, survival, 390)
    page.locator("section.chart", has=page.locator("#chart-os")).screenshot(
        path=str(ARTIFACTS / "survival-charts-390.png")
    )

    # The text alternative: each chart's accessible name points to its table, whose summary
    # the keyboard reaches and opens; the table's caption names the chart.
    for key, title in (
        ("os", "Overall survival"),
        ("pfs", "Progression-free survival"),
        ("nrm", "Non-relapse mortality"),
    ):
        chart = page.get_by_role("img", name=re.compile(rf"^{title.split()[0]}|{title.lower()}", re.IGNORECASE))
        expect(page.locator(f"#chart-{key}")).to_have_attribute("aria-label", re.compile(f"{title}.*: the numbers"))
        assert chart.count() >= 1
        summary = page.locator(f"#{key}-numbers-summary")
        expect(page.locator(f"#chart-{key}")).to_have_attribute("aria-describedby", f"{key}-numbers-summary")
        expect(summary).to_have_text(re.compile(f"^{title}.*: the numbers$"))
        table = page.locator(f"#{key}-numbers table").first
        expect(table).to_be_hidden()
        summary.focus()
        page.keyboard.press("Enter")
        expect(table).to_be_visible()
        expect(table.locator("caption")).to_contain_text(title)
        # Every curve point the API serves is a row (the chart draws the same points).
        expect(table.locator("tbody tr")).to_have_count(len(survival[key]["curve"]))
    # Opened, the tables pass axe like the rest of the page (at 390 px, and at 1280 px).
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.evaluate(AXE)
        assert page.evaluate(AXE_RUN, AXE_TAGS) == [], f"@{width}px"
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"@{width}px with the tables open: {overflow}px of sideways scrolling"
