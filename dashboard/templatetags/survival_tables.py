"""The dashboard's survival charts as tables (their text alternative, issue 16 item 20).

The rows are the curve points and the at-risk grid exactly as the survival API serves them
(``dashboard.selectors.survival_charts``): the time as served, estimates and confidence
limits rounded to 3 decimals for reading (the API serves 6), counts unchanged; a value the
API does not serve (no events at time 0, no CI for an incidence of 0) is a dash. Built in
Python rather than a template loop: a large trial has hundreds of curve points per chart.
"""

from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from analysis.survival_summary import MONTH_DAYS

register = template.Library()

DASH = "—"


# Every cell is made by one of these three from a number (float() / int() refuse anything
# else), so the rows need no escaping: joined as plain strings, several times faster than
# format_html per cell (~900 cells a chart on a large trial).
def _time(value: Any) -> str:
    if value is None:
        return DASH
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def _proportion(value: Any) -> str:
    return DASH if value is None else f"{float(value):.3f}"


def _count(value: Any) -> str:
    return DASH if value is None else str(int(value))


def _rows(rows: Any) -> SafeString:
    return mark_safe(  # noqa: S308 - numbers only (above)
        "\n".join("<tr><th scope='row'>" + r[0] + "</th><td>" + "</td><td>".join(r[1:]) + "</td></tr>" for r in rows)
    )


@register.simple_tag
def survival_curve_rows(block: dict[str, Any] | None, incidence: bool = False) -> SafeString:
    """One ``<tr>`` per curve point: day, estimate, 95% CI, at risk, events (competing for
    the cumulative incidence), censored."""
    if not block:
        return SafeString("")
    curve = block.get("curve") or []
    if incidence:
        return _rows(
            (_time(p.get("t_days")), _proportion(p.get("estimate")), _proportion(p.get("lower")),
             _proportion(p.get("upper")), _count(p.get("at_risk")), _count(p.get("events")),
             _count(p.get("competing")), _count(p.get("censored")))
            for p in curve
        )  # fmt: skip
    return _rows(
        (_time(p.get("t_days")), _proportion(p.get("estimate")), _proportion(p.get("lower")),
         _proportion(p.get("upper")), _count(p.get("at_risk")), _count(p.get("events")),
         _count(p.get("censored")))
        for p in curve
    )  # fmt: skip


@register.simple_tag
def survival_risk_rows(block: dict[str, Any] | None) -> SafeString:
    """One ``<tr>`` per point of the at-risk grid (the row under the chart): months (the
    axis tick), day, number at risk."""
    if not block:
        return SafeString("")
    return _rows(
        (str(round(float(g["t_days"]) / MONTH_DAYS)), _time(g["t_days"]), _count(g.get("at_risk")))
        for g in block.get("at_risk_grid") or []
    )
