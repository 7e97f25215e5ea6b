"""Source data verification marks on the casebook pages: ``{% load sdv %}``.

A page reads its patient's marks once (``{% sdv_marks patient as sdv %}``, one SQL query,
cached on the patient object) and ``{% sdv_mark sdv record %}`` shows each record's mark
(verified / cleared by an edit / not verified) with, for monitors, the verify button.
"""

from typing import Any

from django import template
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

from cleaning.selectors import SdvIndex, sdv_index
from core.locks import lock_info_of
from trial import access

register = template.Library()


@register.simple_tag
def sdv_marks(patient: Any) -> SdvIndex:
    index = getattr(patient, "_sdv_index", None)
    if index is None:
        index = sdv_index(patient)
        patient._sdv_index = index
    return index


def _can_verify(request: Any, patient: Any) -> bool:
    """A monitor of the trial, while the casebook takes SDV marks (open or frozen). Read
    once per page (cached on the patient object, like the marks)."""
    cached = getattr(patient, "_sdv_can_verify", None)
    if cached is None:
        cached = (
            request is not None
            and access.can(request.user, "verify", patient.trial_id, patient.site_id)
            and not lock_info_of(patient).refuses("query")
        )
        patient._sdv_can_verify = cached
    return bool(cached)


@register.inclusion_tag("cleaning/_sdv.html", takes_context=True)
def sdv_mark(context: Any, index: SdvIndex | None, record: Model | None, patient: Any = None) -> dict[str, Any]:
    if index is None or record is None:
        return {"status": None}
    patient = patient or context.get("patient")
    content_type = ContentType.objects.get_for_model(type(record))
    request = context.get("request")
    return {
        "status": index.status(record),
        "record_key": f"{content_type.app_label}.{content_type.model}:{record.pk}",
        "patient": patient,
        "can_verify": patient is not None and _can_verify(request, patient),
        "next": request.get_full_path() if request is not None else "",
    }
