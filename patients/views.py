"""Patient screens: thin (form -> service -> redirect); scope comes from the selectors."""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render

from core.audit import casebook_history, casebook_history_filter, casebook_record_types, record_history
from core.errors import EditConflict
from core.forms import SignatureForm, add_service_errors, form_submit
from core.locks import data_entry_page, lock_gate
from core.models import Signature
from core.signatures import signature_apply, signatures_for
from patients import flows, selectors, services
from patients.forms import (
    AssessmentEditForm,
    AssessmentForm,
    CasebookHistoryFilterForm,
    ConsentForm,
    EnrolForm,
    EventEditForm,
    EventForm,
    LockChangeForm,
    PatientEditForm,
    PatientRegisterForm,
    ScreeningForm,
    TransplantEditForm,
    TransplantForm,
)
from patients.models import Patient
from trial import access
from trial.models import Trial


def _can_edit(user, patient: Patient) -> bool:  # type: ignore[no-untyped-def]
    return access.can(user, "enter_data", patient.trial_id, patient.site_id)


def _editable_patient(request, patient_id: int) -> Patient:  # type: ignore[no-untyped-def]
    patient = selectors.patient_get(request.user, patient_id)  # 404 outside the user's scope
    if not _can_edit(request.user, patient):
        raise PermissionDenied("You can read this patient but not enter data for it.")
    return patient


def _may_enrol(user, patient: Patient) -> bool:  # type: ignore[no-untyped-def]
    return _can_edit(user, patient) or access.can(user, "sign", patient.trial_id)


def _enrol_offer(user, patient: Patient):  # type: ignore[no-untyped-def]
    """The screening an "Enrol" button stands on (services.enrolment_ready), for a user who
    may enrol this patient in an open casebook; else None (no button)."""
    if not _may_enrol(user, patient) or not patient.lock.is_open:
        return None
    return services.enrolment_ready(patient)


def _save(form, call: Callable[[], Any]) -> Any:  # type: ignore[no-untyped-def]
    """Run a service call; its refusals go next to the form's fields. None if refused."""
    try:
        return call()
    except ValidationError as exc:
        add_service_errors(form, exc)
    except EditConflict as exc:
        form.add_error(None, str(exc))
    return None


def _form_page(  # type: ignore[no-untyped-def]
    request, form, title: str, patient: Patient | None = None, trial: Trial | None = None, step: str = ""
) -> HttpResponse:
    context = {"form": form, "title": title, "patient": patient, "trial": trial or (patient and patient.trial)}
    if step:  # a form of a data-entry flow: "Save and continue" next to Save (patients.flows)
        context.update(flows.continue_context(step))
    if patient is not None:  # a frozen or locked casebook: the banner, and no Save button
        context["lock"] = patient.lock
    return render(request, "patients/patient_form.html", context)


def _changes(form, fields) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {f: form.cleaned_data[f] for f in fields}


# --- patients ------------------------------------------------------------------------


PATIENTS_PER_PAGE = 50


@login_required
def patient_list(request, trial_id: int):  # type: ignore[no-untyped-def]
    """A page of the trial's patients by subject ID, optionally those whose subject ID
    contains ``q``: a fixed cost whatever the trial's size (issue 11)."""
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "view_clinical", pk=trial_id)
    search = request.GET.get("q", "").strip()[:40]  # longer than any subject ID
    patients = selectors.patient_list_with_status(request.user, trial, subject_id=search)
    page = Paginator(patients, PATIENTS_PER_PAGE).get_page(request.GET.get("page"))  # a bad page number: page 1
    context = {
        "trial": trial,
        "page": page,
        "search": search,
        "can_register": access.can(request.user, "enter_data", trial),
    }
    return render(request, "patients/patient_list.html", context)


@login_required
def patient_create(request, trial_id: int):  # type: ignore[no-untyped-def]
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "enter_data", pk=trial_id)
    form = PatientRegisterForm(request.POST or None, user=request.user, trial=trial)
    if request.method == "POST":
        patient = form_submit(
            form,
            lambda: services.patient_register(user=request.user, trial=trial, data=form.cleaned_data),
            lambda partial: services.patient_register_check(user=request.user, trial=trial, data=partial),
        )
        if patient is not None:
            return flows.after_save(
                request,
                "patient_create",
                patient_id=patient.pk,
                saved=f"{patient.subject_id} registered.",
                default=redirect("patient_detail", patient_id=patient.pk),
            )
    return _form_page(request, form, "Register a patient", trial=trial, step="patient_create")


@login_required
def patient_detail(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = selectors.patient_get(request.user, patient_id)
    return render(
        request,
        "patients/patient_detail.html",
        {
            "patient": patient,
            "transplant": selectors.transplant_of(patient),
            "signatures": signatures_for(patient),
            "can_edit": _can_edit(request.user, patient),
            "can_sign": access.can(request.user, "sign", patient.trial_id),
            "can_lock": access.can(request.user, "lock", patient.trial_id),
            "enrol_offer": _enrol_offer(request.user, patient),
        },
    )


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def patient_edit(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = _editable_patient(request, patient_id)
    form = PatientEditForm(request.POST or None, instance=patient, initial={"version": patient.version})
    if request.method == "POST" and form.is_valid():
        saved = _save(
            form,
            lambda: services.patient_update(
                user=request.user,
                patient=patient,
                changes=_changes(form, PatientEditForm.Meta.fields),
                reason=form.cleaned_data["reason_for_change"],
                expected_version=form.cleaned_data["version"],
            ),
        )
        if saved is not None:
            messages.success(request, "Change saved and recorded in the audit trail.")
            return redirect("patient_detail", patient_id=patient.pk)
    return _form_page(request, form, f"Edit {patient.subject_id}", patient)


@login_required
def patient_history(request, patient_id: int):  # type: ignore[no-untyped-def]
    """The casebook's audit trail (issue 19): every version of every record of the
    casebook with old and new values and the reason, filterable and printable."""
    patient = selectors.patient_get(request.user, patient_id)
    every = casebook_history(patient.pk)
    people = sorted({(r.user_id, r.row.user) for r in every if r.user_id is not None}, key=lambda p: p[1])
    form = CasebookHistoryFilterForm(request.GET or None, types=casebook_record_types(), people=people)
    filters = form.cleaned_data if form.is_valid() else {}
    rows = casebook_history_filter(
        every,
        record_type=filters.get("record_type") or "",
        user_id=int(filters["user"]) if filters.get("user") else None,
        since=filters.get("since"),
        until=filters.get("until"),
    )
    return render(request, "patients/casebook_history.html", {"patient": patient, "rows": rows, "form": form})


@data_entry_page  # a frozen or locked casebook shows no editable form
@lock_gate("query")  # a frozen casebook can still be signed as reviewed; a locked one not
@login_required
def patient_sign(request, patient_id: int):  # type: ignore[no-untyped-def]
    """An investigator signs the casebook as reviewed (the reusable e-signature)."""
    patient = selectors.patient_get(request.user, patient_id)
    if not access.can(request.user, "sign", patient.trial_id):
        raise PermissionDenied("Only investigators sign casebooks.")
    meaning = Signature.Meaning.REVIEWED  # fixed by the screen, never taken from the client
    form = SignatureForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            signature_apply(patient, user=request.user, password=form.cleaned_data["password"], meaning=meaning)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Signed.")
            return redirect("patient_detail", patient_id=patient.pk)
    return render(
        request,
        "core/sign.html",
        {"record": patient, "form": form, "meaning": meaning.label, "back": patient},
    )


# --- transplant, consent, screening, enrolment ---------------------------------------


@login_required
def patient_eligibility(request, patient_id: int):  # type: ignore[no-untyped-def]
    """The casebook tab for transplant, consents, screenings and enrolment."""
    patient = selectors.patient_casebook(request.user, patient_id)
    return render(
        request,
        "patients/eligibility.html",
        {
            "patient": patient,
            "transplant": selectors.transplant_of(patient),
            "can_edit": _can_edit(request.user, patient),
            "can_enrol": _may_enrol(request.user, patient),
        },
    )


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def transplant_edit(request, patient_id: int):  # type: ignore[no-untyped-def]
    """First entry of the transplant, or an edit of it with a reason."""
    patient = _editable_patient(request, patient_id)
    transplant = selectors.transplant_of(patient)
    if transplant is None:
        form = TransplantForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = _changes(form, TransplantForm.Meta.fields)
            saved = _save(form, lambda: services.transplant_record(user=request.user, patient=patient, data=data))
            if saved is not None:
                return flows.after_save(
                    request,
                    "transplant_edit",
                    patient_id=patient.pk,
                    saved="Transplant recorded.",
                    default=redirect("patient_eligibility", patient_id=patient.pk),
                )
        return _form_page(request, form, f"Transplant of {patient.subject_id}", patient, step="transplant_edit")
    form = TransplantEditForm(request.POST or None, instance=transplant, initial={"version": transplant.version})
    if request.method == "POST" and form.is_valid():
        saved = _save(
            form,
            lambda: services.transplant_update(
                user=request.user,
                transplant=transplant,
                changes=_changes(form, TransplantForm.Meta.fields),
                reason=form.cleaned_data["reason_for_change"],
                expected_version=form.cleaned_data["version"],
            ),
        )
        if saved is not None:
            return flows.after_save(
                request,
                "transplant_edit",
                patient_id=patient.pk,
                saved="Change saved and recorded in the audit trail.",
                default=redirect("patient_eligibility", patient_id=patient.pk),
            )
    return _form_page(request, form, f"Edit the transplant of {patient.subject_id}", patient, step="transplant_edit")


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def consent_create(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = _editable_patient(request, patient_id)
    form = ConsentForm(request.POST or None, trial=patient.trial)
    if request.method == "POST" and form.is_valid():
        saved = _save(
            form,
            lambda: services.consent_record(
                user=request.user,
                patient=patient,
                protocol_version=form.cleaned_data["protocol_version"],
                on=form.cleaned_data["date"],
                version_override_reason=form.cleaned_data["version_override_reason"],
            ),
        )
        if saved is not None:
            return flows.after_save(
                request,
                "consent_create",
                patient_id=patient.pk,
                saved=f"Consent to version {saved.protocol_version.version} recorded.",
                default=redirect("patient_eligibility", patient_id=patient.pk),
            )
    return _form_page(request, form, f"Consent of {patient.subject_id}", patient, step="consent_create")


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def screening_create(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = _editable_patient(request, patient_id)
    form = ScreeningForm(request.POST or None)
    if request.method == "POST":
        saved = form_submit(
            form,
            lambda: services.screening_record(
                user=request.user, patient=patient, data=_changes(form, ScreeningForm.Meta.fields)
            ),
            lambda partial: services.screening_check(user=request.user, patient=patient, data=partial),
        )
        if saved is not None:
            return flows.after_save(
                request,
                "screening_create",
                patient_id=patient.pk,
                saved=f"Screening stored: {saved.get_result_display()}.",
                default=redirect("screening_detail", screening_id=saved.pk),
                stop=""
                if saved.result == saved.Result.ELIGIBLE
                else "Enrolment needs an eligible screening: the criteria not passed are below.",
            )
    return _form_page(request, form, f"Screen {patient.subject_id}", patient, step="screening_create")


@login_required
def screening_detail(request, screening_id: int):  # type: ignore[no-untyped-def]
    screening = selectors.screening_get(request.user, screening_id)
    offer = _enrol_offer(request.user, screening.patient)
    return render(
        request,
        "patients/screening_detail.html",
        # "Enrol" on this page only when it is the screening enrolment would rest on today
        {"screening": screening, "patient": screening.patient, "enrol_offer": offer if offer == screening else None},
    )


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def patient_enrol(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = selectors.patient_get(request.user, patient_id)
    investigator = access.can(request.user, "sign", patient.trial_id)
    if not (investigator or _can_edit(request.user, patient)):
        raise PermissionDenied("You do not enrol patients in this trial.")
    form = EnrolForm(
        request.POST or None, trial=patient.trial, investigator=investigator, initial={"version": patient.version}
    )
    if request.method == "POST" and form.is_valid():
        saved = _save(
            form,
            lambda: services.patient_enrol(
                user=request.user,
                patient=patient,
                on=form.cleaned_data["enrolled_on"],
                dose_level=form.cleaned_data.get("dose_level"),
                deviation_reason=form.cleaned_data.get("deviation_reason", ""),
                expected_version=form.cleaned_data["version"],
                backfill=bool(form.cleaned_data.get("backfill")),
            ),
        )
        if saved is not None:
            return flows.after_save(
                request,
                "patient_enrol",
                patient_id=patient.pk,
                saved=f"{saved.subject_id} enrolled at {saved.dose_level}.",
                default=redirect("patient_eligibility", patient_id=patient.pk),
            )
    # Before Save, the page says whether a slot is open and at which level the patient goes.
    return render(
        request,
        "patients/enrol.html",
        {
            "form": form,
            "title": f"Enrol {patient.subject_id}",
            "patient": patient,
            "trial": patient.trial,
            "lock": patient.lock,
            "enrolment": selectors.enrolment_slots(patient.trial),
            "investigator": investigator,
            # the next form (cycle 1) is data entry: only for whoever enters the patient's data
            **(flows.continue_context("patient_enrol") if _can_edit(request.user, patient) else {}),
        },
    )


# --- assessments and outcome events --------------------------------------------------


@login_required
def patient_assessments(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = selectors.patient_get(request.user, patient_id)
    return render(
        request,
        "patients/assessments.html",
        {
            "patient": patient,
            "assessments": selectors.assessment_list(request.user, patient.pk),
            "can_edit": _can_edit(request.user, patient),
        },
    )


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def assessment_create(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = _editable_patient(request, patient_id)
    # ?kind=: the kind due at the visit, when the visit's flow leads here (patients.flows)
    form = AssessmentForm(request.POST or None, initial={"kind": request.GET.get("kind")})
    if request.method == "POST" and form.is_valid():
        data = _changes(form, AssessmentForm.Meta.fields)
        saved = _save(form, lambda: services.assessment_record(user=request.user, patient=patient, data=data))
        if saved is not None:
            messages.success(request, f"{saved.get_kind_display()} of {saved.date} recorded.")
            return redirect("patient_assessments", patient_id=patient.pk)
    return _form_page(request, form, f"New assessment for {patient.subject_id}", patient)


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def assessment_edit(request, assessment_id: int):  # type: ignore[no-untyped-def]
    assessment = selectors.assessment_get(request.user, assessment_id)
    patient = _editable_patient(request, assessment.patient_id)
    form = AssessmentEditForm(request.POST or None, instance=assessment, initial={"version": assessment.version})
    if request.method == "POST" and form.is_valid():
        saved = _save(
            form,
            lambda: services.assessment_update(
                user=request.user,
                assessment=assessment,
                changes=_changes(form, AssessmentForm.Meta.fields),
                reason=form.cleaned_data["reason_for_change"],
                expected_version=form.cleaned_data["version"],
            ),
        )
        if saved is not None:
            messages.success(request, "Change saved and recorded in the audit trail.")
            return redirect("patient_assessments", patient_id=patient.pk)
    return _form_page(request, form, f"Edit {assessment}", patient)


@login_required
def patient_events(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = selectors.patient_get(request.user, patient_id)
    return render(
        request,
        "patients/events.html",
        {
            "patient": patient,
            "events": selectors.event_list(request.user, patient.pk),
            "can_edit": _can_edit(request.user, patient),
        },
    )


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def event_create(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = _editable_patient(request, patient_id)
    form = EventForm(request.POST or None, initial={"kind": request.GET.get("kind")})
    if request.method == "POST" and form.is_valid():
        data = _changes(form, EventForm.Meta.fields)
        saved = _save(form, lambda: services.event_record(user=request.user, patient=patient, data=data))
        if saved is not None:
            messages.success(request, f"{saved.get_kind_display()} of {saved.date} recorded.")
            return redirect("patient_events", patient_id=patient.pk)
    return _form_page(request, form, f"New outcome event for {patient.subject_id}", patient)


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def event_edit(request, patient_event_id: int):  # type: ignore[no-untyped-def]
    event = selectors.event_get(request.user, patient_event_id)
    patient = _editable_patient(request, event.patient_id)
    form = EventEditForm(request.POST or None, instance=event, initial={"version": event.version})
    if request.method == "POST" and form.is_valid():
        saved = _save(
            form,
            lambda: services.event_update(
                user=request.user,
                event=event,
                changes=_changes(form, EventForm.Meta.fields),
                reason=form.cleaned_data["reason_for_change"],
                expected_version=form.cleaned_data["version"],
            ),
        )
        if saved is not None:
            messages.success(request, "Change saved and recorded in the audit trail.")
            return redirect("patient_events", patient_id=patient.pk)
    return _form_page(request, form, f"Edit {event}", patient)


@login_required
def trial_table1(request, trial_id: int):  # type: ignore[no-untyped-def]
    """The paper's Table 1 over the treated patients the user may see (a coordinator: own sites)."""
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "view_clinical", pk=trial_id)
    table = selectors.table1(trial, user=request.user)
    return render(request, "patients/table1.html", {"trial": trial, "table": table})


# --- casebook and trial locks (issue 12) ---------------------------------------------

_CASEBOOK_ACTIONS = {
    "open": [("frozen", "Frozen: no data changes, queries still answerable"), ("locked", "Locked: nothing changes")],
    "frozen": [("locked", "Locked: nothing changes"), ("open", "Open (unlock)")],
    "locked": [("frozen", "Frozen (queries answerable again)"), ("open", "Open (unlock)")],
}
_CASEBOOK_SERVICES = {
    "frozen": services.casebook_freeze,
    "locked": services.casebook_lock,
    "open": services.casebook_unlock,
}


def _lock_history(lock):  # type: ignore[no-untyped-def]
    if lock is None:
        return [], []
    return record_history(lock), signatures_for(lock)


def _lock_change_page(request, *, lock, choices, change, owner: str, done, context, form_class=LockChangeForm):  # type: ignore[no-untyped-def]
    """The lock screen of a casebook or a trial: the signed state-change form, then its
    history and signatures. ``change(action, password, reason, **other form fields)``
    calls the service."""
    current = lock.state if lock is not None else "open"
    form = form_class(request.POST or None, choices=choices(current))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        extra = {k: v for k, v in data.items() if k not in ("action", "password", "reason")}
        saved = _save(form, lambda: change(data["action"], data["password"], data["reason"], **extra))
        if saved is not None:
            messages.success(request, f"{owner} is now {saved.get_state_display().lower()}.")
            return done
    rows, sigs = _lock_history(lock)
    context = {"own_state": current, "form": form, "rows": rows, "signatures": sigs, **context}
    return render(request, "patients/lock.html", context)


# The casebook's lock screen is cleaning.views.casebook_lock_view: locking is behind the
# pre-lock checklist (open queries, source verification), which the cleaning app owns.


_TRIAL_ACTIONS = {
    "locked": [("open", "Open (unlock the trial; casebooks return to their own state)")],
    "open": [("locked", "Locked: every casebook of the trial is locked for the analysis")],
}
_TRIAL_SERVICES = {"locked": services.trial_lock, "open": services.trial_unlock}


@lock_gate(None)
@login_required
def trial_lock_view(request, trial_id: int):  # type: ignore[no-untyped-def]
    """A data manager locks the whole trial for the analysis (or unlocks it, with a reason)."""
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "view_trial", pk=trial_id)
    if not access.can(request.user, "lock", trial):
        raise PermissionDenied("Only a data manager of this trial locks and unlocks it.")
    lock = services.trial_lock_get(trial)
    return _lock_change_page(
        request,
        lock=lock,
        choices=_TRIAL_ACTIONS.__getitem__,
        change=lambda action, password, reason: _TRIAL_SERVICES[action](
            user=request.user, trial=trial, password=password, reason=reason
        ),
        owner=f"Trial {trial.code}",
        done=redirect("trial_lock", trial_id=trial.pk),
        context={"trial": trial, "title": f"Trial lock of {trial.code}", "lock": lock},
    )
