"""The patient list's completeness marker: each listed patient's worst form mark from the
record status grid, in the grid's fixed number of queries for the whole page."""

from django import template

from dashboard import selectors_grid

register = template.Library()


@register.simple_tag(takes_context=True)
def completeness_marks(context, trial, patients):  # type: ignore[no-untyped-def]
    """{patient id: grid row} for ``patients`` (already scoped by the page)."""
    ids = [p.pk for p in patients]
    rows = selectors_grid.grid_patients(context["request"].user, trial).filter(pk__in=ids)
    grid = selectors_grid.status_grid(context["request"].user, trial, rows)
    return {row.patient.pk: row for row in grid.rows}


@register.filter
def get_item(mapping, key):  # type: ignore[no-untyped-def]
    return mapping.get(key)
