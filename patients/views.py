"""Patient screens: thin (form -> service -> redirect); scope comes from the selectors."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render

from core.audit import record_history
from core.errors import EditConflict
from core.forms import SignatureForm, add_service_errors
from core.models import Signature
from core.signatures import signature_apply, signatures_for
from patients import selectors, services
from patients.forms import PatientEditForm, PatientRegisterForm
from trial import access
from trial.models import Trial


@login_required
def patient_list(request, trial_id: int):  # type: ignore[no-untyped-def]
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "view_clinical", pk=trial_id)
    patients = selectors.patient_list(request.user, trial)
    can_register = access.can(request.user, "enter_data", trial)
    return render(
        request, "patients/patient_list.html", {"trial": trial, "patients": patients, "can_register": can_register}
    )


@login_required
def patient_create(request, trial_id: int):  # type: ignore[no-untyped-def]
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "enter_data", pk=trial_id)
    form = PatientRegisterForm(request.POST or None, user=request.user, trial=trial)
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.patient_register(user=request.user, trial=trial, data=form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"{patient.subject_id} registered.")
            return redirect("patient_detail", patient_id=patient.pk)
    return render(request, "patients/patient_form.html", {"trial": trial, "form": form, "title": "Register a patient"})


@login_required
def patient_detail(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = selectors.patient_get(request.user, patient_id)
    return render(
        request,
        "patients/patient_detail.html",
        {
            "patient": patient,
            "signatures": signatures_for(patient),
            "can_edit": access.can(request.user, "enter_data", patient.trial_id, patient.site_id),
            "can_sign": access.can(request.user, "sign", patient.trial_id),
        },
    )


@login_required
def patient_edit(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = selectors.patient_get(request.user, patient_id)
    if not access.can(request.user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("You can read this patient but not edit it.")
    form = PatientEditForm(request.POST or None, instance=patient, initial={"version": patient.version})
    if request.method == "POST" and form.is_valid():
        changes = {f: form.cleaned_data[f] for f in PatientEditForm.Meta.fields}
        try:
            services.patient_update(
                user=request.user,
                patient=patient,
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
            return redirect("patient_detail", patient_id=patient.pk)
    return render(
        request,
        "patients/patient_form.html",
        {"trial": patient.trial, "patient": patient, "form": form, "title": f"Edit {patient.subject_id}"},
    )


@login_required
def patient_history(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = selectors.patient_get(request.user, patient_id)
    return render(request, "core/history.html", {"record": patient, "rows": record_history(patient), "back": patient})


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
