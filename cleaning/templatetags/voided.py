"""Records voided as entered in error on the casebook pages: ``{% load voided %}``.

``{% voided_rows patient "patients.assessment" %}`` shows, under a record list, the
patient's records of that type that were voided: struck through and labelled, with who
voided them, when and why (issue 19). They have no actions: a voided record is never
edited or voided again. Nothing is shown when there are none (one SQL query).
"""

from typing import Any

from django import template

from cleaning.selectors import voided_records

register = template.Library()


@register.inclusion_tag("cleaning/_voided.html")
def voided_rows(patient: Any, label: str) -> dict[str, Any]:
    records = voided_records(patient, label) if patient is not None else []
    kind = records[0]._meta.verbose_name_plural if records else ""
    return {"records": records, "kind": kind, "label": label}
