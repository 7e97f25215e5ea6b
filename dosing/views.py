"""Dosing screens: thin (form -> service -> redirect); scope comes from the selectors."""

import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone

from core.audit import record_history
from core.errors import EditConflict
from core.forms import add_service_errors
from core.locks import data_entry_page
from dosing import schedule, selectors, services
from dosing.forms import (
    CycleCorrectionForm,
    CycleForm,
    DeviationForm,
    FullDoseRestoreForm,
    LabPanelCorrectionForm,
    MedicationEditForm,
    MedicationForm,
)
from dosing.params import trial_schedule_params
from patients import flows
from trial import access
from trial.models import Trial


def _today():  # type: ignore[no-untyped-def]
    return timezone.localdate()


@login_required
def patient_dosing(request, patient_id: int):  # type: ignore[no-untyped-def]
    """The casebook's dosing tab: cycles, the next one, deviations."""
    patient = selectors.patient_for_dosing(request.user, patient_id)
    cycles = selectors.cycle_list(request.user, patient).order_by("number")
    transplant = getattr(patient, "transplant", None)
    upcoming = None
    given_dates: dict[int, schedule.GivenCycleDates] = {}
    if transplant is not None:
        params = trial_schedule_params(patient.trial)
        past = [schedule.PastCycle(c.number, c.day1) for c in cycles if c.day1 is not None]
        # Before enrolment no cycle is due: the page shows the C1D1 window only.
        upcoming = schedule.next_cycle(transplant.date, 0, past, params, enrolled_on=patient.enrolled_on)
        given_dates = {
            g.number: g
            for g in schedule.given_cycle_dates(transplant.date, past, params, enrolled_on=patient.enrolled_on)
        }
    rows = [(c, given_dates.get(c.number)) for c in cycles]
    return render(
        request,
        "dosing/patient_dosing.html",
        {
            "patient": patient,
            "cycles": cycles,
            "rows": rows,
            "upcoming": upcoming,
            "enrolled": patient.enrolled_on is not None,
            # Every deviation of the patient, the enrolment outside the open slot included.
            "deviations": selectors.patient_deviations(patient),
            "lab_panels": patient.lab_panels.all(),
            "medications": patient.medications.all(),
            "can_enter": access.can(request.user, "enter_data", patient.trial_id, patient.site_id),
            "is_investigator": access.can(request.user, "adjudicate", patient.trial_id),
        },
    )


def _visit_date(day1: str | None) -> datetime.date:
    """The visit a new cycle is for: its day 1 as sent, else today."""
    try:
        return datetime.date.fromisoformat(day1 or "")
    except ValueError:
        return _today()


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def cycle_create(request, patient_id: int):  # type: ignore[no-untyped-def]
    """One form per cycle. "Check" evaluates every rule and shows the safety check and
    the dose arithmetic without saving; "Save" records the cycle."""
    patient = selectors.patient_for_dosing(request.user, patient_id)
    if not access.can(request.user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You can read this patient but not enter data.")
    initial = {"number": services.cycle_evaluate(patient, {"day1": _today()}).number or 1, "given": "true"}
    saving = "save" in request.POST or flows.wants_continue(request)  # "Save and continue" saves too
    # The GVHD/SOS status proposed from the latest record before the visit (today until a
    # day 1 is entered); saved only once the coordinator confirms or changes it.
    carried = selectors.visit_status_carried(patient, _visit_date(request.POST.get("day1")))
    form = CycleForm(request.POST or None, initial=initial, carried=carried, saving=saving)
    evaluation = None
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "status_confirmed"}
        if saving:
            try:
                cycle = services.cycle_record(user=request.user, patient=patient, data=data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                return flows.after_save(
                    request,
                    "cycle_create",
                    patient_id=patient.pk,
                    saved=f"Cycle {cycle.number} recorded.",
                    default=redirect("patient_dosing", patient_id=patient.pk),
                )
        evaluation = services.cycle_evaluate(patient, data)
        if not saving:
            for name, errors in evaluation.errors.items():
                form.add_error(name if name in form.fields else None, errors)
    return render(
        request,
        "dosing/cycle_form.html",
        {
            "patient": patient,
            "form": form,
            "evaluation": evaluation,
            "carried": form.carried,
            **flows.continue_context("cycle_create"),
        },
    )


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def cycle_correct(request, cycle_id: int):  # type: ignore[no-untyped-def]
    """Correct a recorded cycle (e.g. its day 1, answering a query) with a reason: "Check"
    re-runs every rule and shows what else changes; "Save" writes it (services.cycle_update).
    A frozen or locked casebook shows its banner and refuses (core.locks)."""
    cycle = selectors.cycle_get(request.user, cycle_id)
    patient = selectors.patient_for_dosing(request.user, cycle.patient_id)
    if not access.can(request.user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You can read this patient but not correct its cycles.")
    form = CycleCorrectionForm(request.POST or None, initial=CycleCorrectionForm.initial_for(cycle))
    if "save" not in request.POST:  # "Check" writes nothing, so it needs no reason yet
        form.fields["reason_for_change"].required = False
    evaluation = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        changes = {name: data[name] for name in services.CYCLE_CORRECTABLE_FIELDS if name in data}
        if "save" in request.POST:
            try:
                services.cycle_update(
                    user=request.user,
                    cycle=cycle,
                    changes=changes,
                    reason=data["reason_for_change"],
                    expected_version=data["version"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            except EditConflict as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Cycle {cycle.number} corrected; the change is in its audit trail.")
                return redirect("patient_dosing", patient_id=patient.pk)
        values = {name: getattr(cycle, name) for name in services.CYCLE_CORRECTABLE_FIELDS} | changes
        evaluation = services.cycle_correction_evaluate(patient, cycle, values)
        if "save" not in request.POST:
            for name, errors in evaluation.errors.items():
                form.add_error(name if name in form.fields else None, errors)
    return render(
        request,
        "dosing/cycle_correct.html",
        {"patient": patient, "cycle": cycle, "form": form, "evaluation": evaluation, "lock": patient.lock},
    )


@login_required
def cycle_history(request, cycle_id: int):  # type: ignore[no-untyped-def]
    """The audit trail of one cycle: every version with who, when and why."""
    cycle = selectors.cycle_get(request.user, cycle_id)
    return render(request, "core/history.html", {"record": cycle, "rows": record_history(cycle), "back": cycle.patient})


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def deviation_create(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = selectors.patient_for_dosing(request.user, patient_id)
    if not access.can(request.user, "adjudicate", patient.trial_id):
        raise PermissionDenied("Only an investigator records protocol deviations.")
    form = DeviationForm(request.POST or None, initial={"date": _today()})
    if request.method == "POST" and form.is_valid():
        try:
            services.deviation_record(user=request.user, patient=patient, data=form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Protocol deviation recorded.")
            return redirect("patient_dosing", patient_id=patient.pk)
    return render(
        request,
        "dosing/simple_form.html",
        {"patient": patient, "form": form, "title": f"Record a protocol deviation for {patient.subject_id}"},
    )


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def cycle_full_dose(request, cycle_id: int):  # type: ignore[no-untyped-def]
    """An investigator documents a return to full dose after this cycle."""
    cycle = selectors.cycle_get(request.user, cycle_id)
    if not access.can(request.user, "adjudicate", cycle.patient.trial_id):
        raise PermissionDenied("Only an investigator documents a return to full dose.")
    form = FullDoseRestoreForm(request.POST or None, initial={"version": cycle.version})
    if request.method == "POST" and form.is_valid():
        try:
            services.cycle_full_dose_restore(
                user=request.user,
                cycle=cycle,
                reason=form.cleaned_data["reason_for_change"],
                expected_version=form.cleaned_data["version"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except EditConflict as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Return to full dose after cycle {cycle.number} documented.")
            return redirect("patient_dosing", patient_id=cycle.patient_id)
    return render(
        request,
        "dosing/simple_form.html",
        {
            "patient": cycle.patient,
            "form": form,
            "title": f"Return to full dose after cycle {cycle.number} of {cycle.patient.subject_id}",
        },
    )


@login_required
def patient_calendar(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient, entries = selectors.patient_calendar(request.user, patient_id, _today())
    return render(request, "dosing/calendar.html", {"patient": patient, "entries": entries, "today": _today()})


@login_required
def trial_deviations(request, trial_id: int):  # type: ignore[no-untyped-def]
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "view_clinical", pk=trial_id)
    deviations = selectors.deviation_list(request.user, trial)
    return render(request, "dosing/deviation_list.html", {"trial": trial, "deviations": deviations})


@login_required
def site_worklist(request, trial_id: int):  # type: ignore[no-untyped-def]
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "view_clinical", pk=trial_id)
    today = _today()
    sites = selectors.site_worklist(request.user, trial, today)
    return render(request, "dosing/worklist.html", {"trial": trial, "sites": sites, "today": today})


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def medication_create(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = selectors.patient_for_dosing(request.user, patient_id)
    if not access.can(request.user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You can read this patient but not enter data.")
    form = MedicationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.medication_record(user=request.user, patient=patient, data=form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Concomitant medication recorded.")
            return redirect("patient_dosing", patient_id=patient.pk)
    return render(
        request,
        "dosing/simple_form.html",
        {"patient": patient, "form": form, "title": f"Concomitant medication for {patient.subject_id}"},
    )


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def medication_edit(request, concomitantmedication_id: int):  # type: ignore[no-untyped-def]
    medication = selectors.medication_get(request.user, concomitantmedication_id)
    patient = medication.patient
    if not access.can(request.user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You can read this patient but not enter data.")
    form = MedicationEditForm(request.POST or None, instance=medication, initial={"version": medication.version})
    if request.method == "POST" and form.is_valid():
        changes = {f: form.cleaned_data[f] for f in MedicationForm.Meta.fields}
        try:
            services.medication_update(
                user=request.user,
                medication=medication,
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
            return redirect("patient_dosing", patient_id=patient.pk)
    return render(request, "dosing/simple_form.html", {"patient": patient, "form": form, "title": f"Edit {medication}"})


@login_required
def lab_panel_detail(request, lab_panel_id: int):  # type: ignore[no-untyped-def]
    """One lab panel (visit or unscheduled): its values, the cycle it cleared, its audit
    trail, and a link to correct it."""
    panel = selectors.lab_panel_get(request.user, lab_panel_id)
    patient = selectors.patient_for_dosing(request.user, panel.patient_id)
    return render(
        request,
        "dosing/lab_panel.html",
        {
            "patient": patient,
            "panel": panel,
            "cycle": selectors.lab_panel_cycle(panel),
            "rows": record_history(panel),
            "can_enter": access.can(request.user, "enter_data", patient.trial_id, patient.site_id),
        },
    )


@data_entry_page  # a frozen or locked casebook shows no editable form
@login_required
def lab_panel_correct(request, lab_panel_id: int):  # type: ignore[no-untyped-def]
    """Correct a lab panel with a reason (services.lab_panel_update)."""
    panel = selectors.lab_panel_get(request.user, lab_panel_id)
    patient = panel.patient
    if not access.can(request.user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You can read this patient but not correct its labs.")
    form = LabPanelCorrectionForm(request.POST or None, instance=panel, initial={"version": panel.version})
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in services.LAB_PANEL_CORRECTABLE_FIELDS}
        try:
            services.lab_panel_update(
                user=request.user,
                panel=selectors.lab_panel_get(request.user, lab_panel_id),
                changes=changes,
                reason=form.cleaned_data["reason_for_change"],
                expected_version=form.cleaned_data["version"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except EditConflict as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Lab panel corrected; the change is in its audit trail.")
            return redirect("lab_panel_detail", lab_panel_id=panel.pk)
    return render(request, "dosing/simple_form.html", {"patient": patient, "form": form, "title": f"Correct {panel}"})
