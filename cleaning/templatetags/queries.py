"""Query badges for the casebook pages: ``{% load queries %}``.

A page reads its patient's unclosed queries once (``{% open_queries patient as oq %}``,
one SQL query, cached on the patient object) and every badge looks up that index, so a
page costs the same number of SQL queries however many records and badges it shows.
"""

from typing import Any

from django import template
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

from cleaning.selectors import QueryIndex, lab_regrade_queries, open_query_index
from trial import access

register = template.Library()


@register.simple_tag
def open_queries(patient: Any) -> QueryIndex:
    index = getattr(patient, "_open_query_index", None)
    if index is None:
        index = open_query_index(patient)
        patient._open_query_index = index
    return index


@register.inclusion_tag("cleaning/_badge.html", takes_context=True)
def query_badge(context: Any, index: QueryIndex | None, record: Model | None, field_name: str = "") -> dict[str, Any]:
    """Badges of the unclosed queries on ``record`` (or on its ``field_name``); on a
    record-level badge also the "Query" link for users who raise queries."""
    if index is None or record is None:
        return {"queries": []}
    queries = index.for_field(record, field_name) if field_name else index.for_record(record)
    raise_url = ""
    request = context.get("request")
    patient = index.patient
    offer = not field_name and request is not None and patient is not None
    if offer and access.can(request.user, "raise_query", patient.trial_id, patient.site_id):  # type: ignore[union-attr]
        content_type = ContentType.objects.get_for_model(type(record))
        raise_url = f"{content_type.app_label}.{content_type.model}:{record.pk}"
    return {"queries": queries, "raise_record": raise_url, "patient": patient, "field_name": field_name}


@register.simple_tag
def graded_aes_to_review(panel: Any) -> list[tuple[Any, Any]]:
    """(AE, query) pairs confirmed from ``panel`` whose grade its corrected values no longer meet."""
    return lab_regrade_queries(panel)
