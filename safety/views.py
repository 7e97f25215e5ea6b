"""Safety screens: thin (form -> service -> redirect); scope comes from the selectors."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from core.audit import record_history
from core.errors import EditConflict
from core.forms import add_service_errors
from core.locks import data_entry_page
from core.models import Signature
from core.query_params import int_param
from core.signatures import signatures_for
from dosing import selectors as dosing_selectors
from patients import flows
from patients import selectors as patient_selectors
from safety import ctcae, selectors, services
from safety.forms import (
    AdjudicationForm,
    AdverseEventEditForm,
    AdverseEventForm,
    GvhdForm,
    LabConfirmForm,
    LabDismissForm,
)
from safety.models import DltAdjudication
from trial import access
from trial.models import Trial


@login_required
def ctcae_search(request):  # type: ignore[no-untyped-def]
    """The term picker's search (JSON): ?q= matches term, synonym, MedDRA code or SOC (ctcae.search)."""
    query = request.GET.get("q", "")[:100]
    terms = selectors.ctcae_search(query, limit=20)
    return JsonResponse(
        {
            "results": [
                {"id": t.pk, "term": t.term, "soc": t.soc, "meddra_code": t.meddra_code, "grades": t.grades}
                for t in terms
            ],
            "hint": ctcae.search_hint(query),
        }
    )


@login_required
def patient_safety(request, patient_id: int):  # type: ignore[no-untyped-def]
    """The casebook's Safety tab: AEs (cycle, SAE clock), GVHD, lab proposals, DLT status."""
    patient = patient_selectors.patient_get(request.user, patient_id)
    rows = selectors.ae_rows(list(selectors.ae_list(request.user, patient=patient)))
    review = selectors.patient_dlt_review(patient, timezone.localdate())
    return render(
        request,
        "safety/patient_safety.html",
        {
            "patient": patient,
            "rows": rows,
            "gvhd": selectors.gvhd_list(request.user, patient),
            "proposals": selectors.lab_proposals(request.user, patient),
            "review": review,
            "can_edit": access.can(request.user, "enter_data", patient.trial_id, patient.site_id),
            "can_adjudicate": access.can(request.user, "adjudicate", patient.trial_id),
            "confirm_form": LabConfirmForm(),
        },
    )


def _ae_data(form: AdverseEventForm) -> dict:  # type: ignore[type-arg]
    return {f: form.cleaned_data.get(f) for f in AdverseEventForm.Meta.fields}


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def ae_create(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = patient_selectors.patient_get(request.user, patient_id)
    if not access.can(request.user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You can read this patient but not enter data.")
    form = AdverseEventForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ae = services.ae_record(user=request.user, patient=patient, data=_ae_data(form))
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            # The assessment form opens on the kind the visit calendar has due (or overdue).
            due = dosing_selectors.assessment_due(request.user, patient.pk, patient.trial.local_today())
            return flows.after_save(
                request,
                "ae_create",
                patient_id=patient.pk,
                saved=f"Adverse event recorded: {ae.term.term}, grade {ae.grade}.",
                default=redirect("patient_safety", patient_id=patient.pk),
                prefill={"kind": due.kind} if due else None,
            )
    return render(
        request,
        "safety/ae_form.html",
        {"patient": patient, "form": form, "title": f"New AE for {patient}", **flows.continue_context("ae_create")},
    )


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def ae_edit(request, adverse_event_id: int):  # type: ignore[no-untyped-def]
    ae = selectors.ae_get(request.user, adverse_event_id)
    if not access.can(request.user, "enter_data", ae.patient.trial_id, ae.patient.site_id):
        raise PermissionDenied("You can read this AE but not edit it.")
    form = AdverseEventEditForm(request.POST or None, instance=ae, initial={"version": ae.version})
    if request.method == "POST" and form.is_valid():
        data = _ae_data(form)
        changes = {k: v for k, v in data.items() if getattr(ae, k) != v}
        try:
            services.ae_update(
                user=request.user,
                ae=ae,
                changes=changes,
                reason=form.cleaned_data["reason_for_change"],
                expected_version=form.cleaned_data["version"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except EditConflict as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Change saved and recorded in the audit trail.")
            for adj in selectors.adjudications_to_redo(ae):
                messages.warning(
                    request,
                    f"Signed DLT adjudication #{adj.pk} rests on this AE ({'; '.join(adj.evidence_changes)}): "
                    "its signature is now invalidated and it is back on the investigator's DLT review.",
                )
            return redirect("patient_safety", patient_id=ae.patient_id)
    return render(request, "safety/ae_form.html", {"patient": ae.patient, "form": form, "title": f"Follow-up of {ae}"})


@login_required
def ae_history(request, adverse_event_id: int):  # type: ignore[no-untyped-def]
    ae = selectors.ae_get(request.user, adverse_event_id)
    return render(request, "core/history.html", {"record": ae, "rows": record_history(ae), "back": ae.patient})


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def lab_proposal_act(request, lab_panel_id: int):  # type: ignore[no-untyped-def]
    """Confirm (creates the AE, source=lab) or dismiss (with reason) a lab proposal."""
    panel = selectors.lab_panel_get(request.user, lab_panel_id)
    if not access.can(request.user, "enter_data", panel.patient.trial_id, panel.patient.site_id):
        raise PermissionDenied("You do not enter data for this patient.")
    if request.method != "POST":
        return redirect("patient_safety", patient_id=panel.patient_id)
    dismiss = "reason" in request.POST
    form = LabDismissForm(request.POST) if dismiss else LabConfirmForm(request.POST)
    if form.is_valid():
        try:
            if dismiss:
                services.lab_proposal_dismiss(user=request.user, panel=panel, **form.cleaned_data)
            else:
                services.lab_proposal_confirm(user=request.user, panel=panel, **form.cleaned_data)
        except ValidationError as exc:
            for text in exc.messages:
                messages.error(request, text)
        else:
            messages.success(
                request, "Lab proposal dismissed." if dismiss else "Adverse event recorded from the lab value."
            )
    else:
        for errors in form.errors.values():
            for text in errors:
                messages.error(request, text)
    return redirect("patient_safety", patient_id=panel.patient_id)


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def gvhd_create(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = patient_selectors.patient_get(request.user, patient_id)
    if not access.can(request.user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You can read this patient but not enter data.")
    form = GvhdForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.gvhd_record(user=request.user, patient=patient, data=form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "GVHD episode recorded.")
            return redirect("patient_safety", patient_id=patient.pk)
    return render(
        request, "safety/ae_form.html", {"patient": patient, "form": form, "title": f"GVHD episode of {patient}"}
    )


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def adjudication_create(request, patient_id: int):  # type: ignore[no-untyped-def]
    """An investigator's signed adjudication; GET parameters prefill from a candidate."""
    patient = patient_selectors.patient_get(request.user, patient_id)
    if not access.can(request.user, "adjudicate", patient.trial_id):
        raise PermissionDenied("Only an investigator adjudicates DLTs.")
    supersedes, supersedes_id = None, int_param(request, "supersedes")
    if supersedes_id is not None:
        supersedes = selectors.adjudication_list(request.user, patient=patient).filter(pk=supersedes_id).first()
    initial = {k: request.GET[k] for k in ("rule", "adverse_event", "event_date") if request.GET.get(k)}
    form = AdjudicationForm(
        request.POST or None,
        initial=initial,
        adverse_events=selectors.ae_list(request.user, patient=patient),
    )
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        password = data.pop("password")
        try:
            services.adjudication_sign(
                user=request.user, patient=patient, data=data, password=password, supersedes=supersedes
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Adjudication signed.")
            return redirect("patient_safety", patient_id=patient.pk)
    return render(
        request,
        "safety/adjudication_form.html",
        {
            "patient": patient,
            "form": form,
            "supersedes": supersedes,
            "meaning": Signature.Meaning.ADJUDICATED.label,
        },
    )


@login_required
def adjudication_detail(request, dlt_adjudication_id: int):  # type: ignore[no-untyped-def]
    adjudication = selectors.adjudication_get(request.user, dlt_adjudication_id)
    return render(
        request,
        "safety/adjudication_detail.html",
        {
            "adj": adjudication,
            "patient": adjudication.patient,
            "signatures": signatures_for(adjudication),
            "can_adjudicate": access.can(request.user, "adjudicate", adjudication.patient.trial_id),
        },
    )


@login_required
def trial_dlt(request, trial_id: int):  # type: ignore[no-untyped-def]
    """The investigator's DLT page: candidates from the real AEs, labs, cycles, deaths."""
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "view_clinical", pk=trial_id)
    as_of = timezone.localdate()
    reviews = selectors.trial_dlt_review(request.user, trial, as_of)
    return render(
        request,
        "safety/trial_dlt.html",
        {
            "trial": trial,
            "as_of": as_of,
            "reviews": reviews,
            "readjudication": [(r, a) for r in reviews for a in r.readjudication],
            "can_adjudicate": access.can(request.user, "adjudicate", trial),
            "rules": DltAdjudication.Rule,
        },
    )


@login_required
def trial_ae_summary(request, trial_id: int):  # type: ignore[no-untyped-def]
    """The paper's Table 2 by dose level and overall."""
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "view_trial", pk=trial_id)
    capability = selectors.ae_summary_capability(request.user, trial)
    if capability is None:
        raise PermissionDenied("Table 2 is for site staff, investigators and the sponsor.")
    summary = selectors.ae_summary(request.user, trial, capability)
    return render(request, "safety/ae_summary.html", {"trial": trial, "summary": summary})
