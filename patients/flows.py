"""Save and continue (issue 16 item 18a): the coordinator's data-entry flows, in one place.

Two flows, in the order a coordinator fills the forms:

- a new patient: registration -> transplant -> consent -> screening -> enrolment, which
  then opens the first visit;
- a visit: the cycle (with its labs and GVHD/SOS status) -> its adverse events -> the
  assessments due at the visit.

Each form's view shows a "Save and continue" button next to Save when its step has a next
one (``continue_context``) and, after a successful save, calls ``after_save``: plain Save
keeps the form's own destination, "Save and continue" goes to the next form with a message
saying what was saved. The steps are URL names (the dosing and safety forms are named, not
imported: this app sits below them).
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

CONTINUE = "save_continue"  # the name of the "Save and continue" submit button


@dataclass(frozen=True)
class Step:
    url_name: str  # takes patient_id
    title: str  # what the next form is, for the message and the button's hint


# step (the URL name of a form) -> the next form of its flow
_NEXT: dict[str, Step] = {
    "patient_create": Step("transplant_edit", "the transplant"),
    "transplant_edit": Step("consent_create", "the consent"),
    "consent_create": Step("screening_create", "the screening"),
    "screening_create": Step("patient_enrol", "the enrolment"),
    "patient_enrol": Step("cycle_create", "cycle 1 of the patient"),
    "cycle_create": Step("ae_create", "the adverse events of this visit"),
    "ae_create": Step("assessment_create", "the assessments due at this visit"),
}


def next_step(step: str) -> Step | None:
    """The form after ``step`` in its flow; None at the end of a flow."""
    return _NEXT.get(step)


def wants_continue(request: HttpRequest) -> bool:
    """The form was sent with "Save and continue" (it saves like Save)."""
    return request.method == "POST" and CONTINUE in request.POST


def continue_context(step: str) -> dict[str, Any]:
    """Template context for the button: ``continue_to`` names the next form (or None)."""
    following = next_step(step)
    return {"continue_to": following.title if following else None, "continue_name": CONTINUE}


def after_save(
    request: HttpRequest,
    step: str,
    *,
    patient_id: int,
    saved: str,
    default: HttpResponse,
    stop: str = "",
    prefill: dict[str, str] | None = None,
) -> HttpResponse:
    """Where a successful save of ``step`` goes, with the message saying what was saved.

    Plain Save: ``default`` (the form's own destination). "Save and continue": the next form
    of the flow, unless ``stop`` says why the flow cannot go on from here (e.g. a screening
    that did not pass cannot lead to enrolment); then ``default`` with that reason.
    ``prefill``: query parameters the next form starts from (e.g. the assessment kind due).
    """
    following = next_step(step)
    if not wants_continue(request) or following is None:
        messages.success(request, saved)
        return default
    if stop:
        messages.warning(request, f"{saved} {stop}")
        return default
    messages.success(request, f"{saved} Next: {following.title}.")
    url = reverse(following.url_name, kwargs={"patient_id": patient_id})
    return redirect(f"{url}?{urlencode(prefill)}" if prefill else url)
