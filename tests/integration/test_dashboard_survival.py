"""The dashboard's survival charts and their text alternative (issue 16 item 20, issue 19
item 10): each chart has a table of its numbers in the page, named by the chart, and every
number in it is one the survival API serves for the same trial (the seed trial here)."""

import json
import re
from html.parser import HTMLParser

import pytest

from analysis.survival_summary import MONTH_DAYS
from tests.page_walk import seed_world

pytestmark = pytest.mark.django_db

CHARTS = {"os": "Overall survival", "pfs": "Progression-free survival", "nrm": "Non-relapse mortality"}


class _Tables(HTMLParser):
    """Every ``<table data-name=...>``: its caption and its body rows as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict] = {}  # type: ignore[type-arg]
        self._table: dict | None = None  # type: ignore[type-arg]
        self._cell: list[str] | None = None
        self._in_body = self._in_caption = False

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        attrs = dict(attrs)
        if tag == "table" and attrs.get("data-name"):
            self._table = self.tables[attrs["data-name"]] = {"caption": "", "rows": []}
        elif self._table is not None and tag == "caption":
            self._in_caption = True
        elif self._table is not None and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self._table["rows"].append([])
        elif self._in_body and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag == "table":
            self._table, self._in_body = None, False
        elif tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table["rows"][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_caption and self._table is not None:
            self._table["caption"] += data


def _tables(html: str) -> dict[str, dict]:  # type: ignore[type-arg]
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def _time(t):  # type: ignore[no-untyped-def]
    return str(int(t)) if float(t).is_integer() else f"{t:g}"


def _p(x):  # type: ignore[no-untyped-def]
    return "—" if x is None else f"{x:.3f}"


def _n(x):  # type: ignore[no-untyped-def]
    return "—" if x is None else str(x)


@pytest.fixture
def seeded(client):  # type: ignore[no-untyped-def]
    trial, users = seed_world()
    client.force_login(users["investigator"], backend="django.contrib.auth.backends.ModelBackend")
    page = client.get(f"/trials/{trial.pk}/dashboard/")
    assert page.status_code == 200
    api = client.get(f"/api/v1/trials/{trial.pk}/survival/", HTTP_ACCEPT="application/json")
    assert api.status_code == 200
    return trial, users, page.content.decode(), api.json()


def test_each_chart_has_a_table_of_the_numbers_the_survival_api_serves(seeded):  # type: ignore[no-untyped-def]
    _, _, html, api = seeded
    tables = _tables(html)
    for key in CHARTS:
        block = api[key]
        assert len(block["curve"]) > 5, key  # the seed trial has events and censorings on every curve
        rows = tables[f"{key}-curve"]["rows"]
        if key == "nrm":
            expected = [
                [_time(p["t_days"]), _p(p["estimate"]), _p(p["lower"]), _p(p["upper"]), _n(p["at_risk"]),
                 _n(p.get("events")), _n(p.get("competing")), _n(p.get("censored"))]
                for p in block["curve"]
            ]  # fmt: skip
        else:
            expected = [
                [_time(p["t_days"]), _p(p["estimate"]), _p(p["lower"]), _p(p["upper"]), _n(p["at_risk"]),
                 _n(p.get("events")), _n(p["censored"])]
                for p in block["curve"]
            ]  # fmt: skip
        assert rows == expected, key
        caption = tables[f"{key}-curve"]["caption"]
        assert f"N = {block['n']}, {block['events']} event" in caption, caption
    for key in ("os", "pfs"):
        grid = api[key]["at_risk_grid"]
        assert len(grid) > 3
        assert tables[f"risk-{key}"]["rows"] == [
            [str(round(g["t_days"] / MONTH_DAYS)), _time(g["t_days"]), str(g["at_risk"])] for g in grid
        ]
    assert "risk-nrm" not in tables  # the incidence chart has no at-risk row


def test_the_charts_draw_the_same_numbers_the_tables_print(seeded):  # type: ignore[no-untyped-def]
    _, _, html, api = seeded
    embedded = json.loads(
        re.search(r'<script id="survival-data" type="application/json">(.*?)</script>', html).group(1)
    )
    for key in CHARTS:
        assert embedded[key]["curve"] == api[key]["curve"]
        assert embedded[key]["origin"] == api[key]["origin"]
        assert "excluded" not in embedded[key]  # no subject IDs in what the charts read
    for key in ("os", "pfs"):
        assert embedded[key]["at_risk_grid"] == api[key]["at_risk_grid"]


def test_each_chart_is_named_and_points_to_its_table(seeded):  # type: ignore[no-untyped-def]
    _, _, html, _ = seeded
    for key, title in CHARTS.items():
        chart = re.search(rf'<div id="chart-{key}"[^>]*>', html).group(0)
        assert 'role="img"' in chart
        label = re.search(r'aria-label="([^"]*)"', chart).group(1)
        described = re.search(r'aria-describedby="([^"]*)"', chart).group(1)
        summary = re.search(rf'<summary id="{described}">([^<]*)</summary>', html)
        assert summary is not None, f"{key}: aria-describedby points at nothing"
        assert summary.group(1).startswith(title), summary.group(1)
        assert summary.group(1) in label.replace("&ldquo;", "").replace("&rdquo;", ""), label
        # The table sits in the chart's own section, inside the <details> the summary opens.
        section = html[html.index(f'id="chart-{key}"') : html.index("</section>", html.index(f'id="chart-{key}"'))]
        assert f'data-name="{key}-curve"' in section


def test_a_coordinator_sees_the_same_curves_without_subject_ids(seeded, client):  # type: ignore[no-untyped-def]
    trial, users, investigator_html, _ = seeded
    client.force_login(users["coordinator"], backend="django.contrib.auth.backends.ModelBackend")
    html = client.get(f"/trials/{trial.pk}/dashboard/").content.decode()
    assert _tables(html)["os-curve"] == _tables(investigator_html)["os-curve"]
