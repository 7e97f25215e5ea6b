"""Query screens: thin (form -> service -> redirect); scope comes from the selectors."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from cleaning import selectors, services
from cleaning.forms import AnswerForm, CasebookLockForm, CloseForm, RaiseForm, ReopenForm, VoidForm
from cleaning.models import DataQuery, QueryMessage
from core.errors import EditConflict
from core.forms import add_service_errors
from core.locks import data_entry_page, lock_gate, lock_info_of
from core.query_params import int_param
from patients import selectors as patient_selectors
from trial import access
from trial.models import Trial

PAGE_SIZE = 50
# The record's audit trail page, where the correction's history row is shown.
HISTORY_PAGES = {
    "safety.adverseevent": ("ae_history", "record"),
    "patients.patient": ("patient_history", "patient"),
    "dosing.cycle": ("cycle_history", "record"),
    "dosing.labpanel": ("lab_panel_detail", "record"),
}


def _record_from(request: Any, patient: Any) -> Any:
    """The record named by ?record=<app>.<model>:<id> (default: the patient), in ``patient``'s casebook."""
    spec = request.GET.get("record", "")
    if not spec:
        return patient
    try:
        label, pk = spec.split(":", 1)
        app_label, model_name = label.split(".", 1)
        model = ContentType.objects.get_by_natural_key(app_label, model_name).model_class()
        record = model._default_manager.get(pk=int(pk))  # type: ignore[union-attr]
    except (ValueError, AttributeError, ObjectDoesNotExist) as exc:  # malformed, unknown type or id
        raise Http404("No such record in this casebook.") from exc
    if not services.is_queryable_model(type(record)) or services.patient_of(record).pk != patient.pk:
        raise Http404("No such record in this casebook.")
    return record


@data_entry_page  # a frozen or locked casebook shows no editable form
@lock_gate("query")  # a query may be raised on a frozen casebook, not on a locked one
@login_required
def query_raise(request, patient_id: int):  # type: ignore[no-untyped-def]
    patient = patient_selectors.patient_get(request.user, patient_id)
    if not access.can(request.user, "raise_query", patient.trial_id, patient.site_id):
        raise PermissionDenied("Your role does not raise queries.")
    record = _record_from(request, patient)
    form = RaiseForm(
        request.POST or None,
        fields=services.queryable_fields(type(record)),
        initial={"field_name": request.GET.get("field", "")},
    )
    if request.method == "POST" and form.is_valid():
        try:
            query = services.query_raise(
                user=request.user,
                target=record,
                field_name=form.cleaned_data["field_name"],
                question=form.cleaned_data["question"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Query #{query.pk} raised; the site's coordinators see it on the record.")
            return redirect("query_detail", data_query_id=query.pk)
    return render(
        request,
        "cleaning/query_raise.html",
        {"patient": patient, "record": record, "record_type": type(record)._meta.verbose_name, "form": form},
    )


def _edit_url(query: DataQuery) -> str:
    page = selectors.EDIT_PAGES.get(selectors.target_key(query))
    if page is None:
        return ""
    name, arg = page
    return reverse(name, args=[query.object_id if arg == "record" else query.patient_id])


def _history_url(query: DataQuery) -> str:
    page = HISTORY_PAGES.get(selectors.target_key(query))
    if page is None:
        return ""
    name, arg = page
    return reverse(name, args=[query.object_id if arg == "record" else query.patient_id])


def _history_rows(target: Any, thread: list[QueryMessage]) -> dict[int, Any]:
    """The corrected record's history rows the thread names, in one SQL query."""
    ids = [m.target_history_id for m in thread if m.target_history_id]
    if not ids:
        return {}
    return {h.history_id: h for h in target.history.filter(history_id__in=ids).select_related("history_user")}


@login_required
def query_detail(request, data_query_id: int):  # type: ignore[no-untyped-def]
    """The thread, with the answer form (site coordinators) and close/re-open (raisers)."""
    query = selectors.query_get(request.user, data_query_id)
    target = services.query_target(query)
    model = type(target)
    lock = lock_info_of(query)
    user = request.user
    may_answer = access.can(user, "enter_data", query.trial_id, query.site_id)
    may_raise = access.can(user, "raise_query", query.trial_id, query.site_id)
    corrector = services.corrector_for(model)
    correctable = (
        corrector is not None and query.field_name in corrector.fields and not lock.refuses("data") and may_answer
    )
    correct_field = model._meta.get_field(query.field_name) if correctable else None

    action = request.POST.get("action", "") if request.method == "POST" else ""
    answer_form = AnswerForm(request.POST if action == "answer" else None, correct=correct_field)
    close_form = CloseForm(request.POST if action == "close" else None)
    reopen_form = ReopenForm(request.POST if action == "reopen" else None)
    if action:
        form = {"answer": answer_form, "close": close_form, "reopen": reopen_form}.get(action)
        if form is None:
            raise Http404("No such action.")
        if form.is_valid():
            try:
                if action == "answer":
                    if not may_answer:
                        raise PermissionDenied("Queries are answered by the site's coordinators.")
                    services.query_answer(
                        user=user,
                        query=query,
                        text=form.cleaned_data["text"],
                        correction=answer_form.correction(query.field_name),
                        reason=form.cleaned_data.get("reason", ""),
                    )
                    done = "Answer recorded."
                elif action == "close":
                    services.query_close(user=user, query=query, note=form.cleaned_data["note"])
                    done = f"Query #{query.pk} closed."
                else:
                    services.query_reopen(user=user, query=query, text=form.cleaned_data["text"])
                    done = f"Query #{query.pk} re-opened."
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, done)
                return redirect("query_detail", data_query_id=query.pk)

    thread = selectors.query_thread(query)
    history = _history_rows(target, thread)
    steps = [(m, history.get(m.target_history_id or 0)) for m in thread]
    return render(
        request,
        "cleaning/query_detail.html",
        {
            "query": query,
            "patient": query.patient,
            "target": target,
            "target_label": selectors.target_label(query),
            "field_label": services.field_label(model, query.field_name),
            "current_value": getattr(target, query.field_name, None) if query.field_name else None,
            "record_page": reverse(
                selectors.RECORD_PAGES.get(selectors.target_key(query), "patient_detail"), args=[query.patient_id]
            ),
            "edit_url": _edit_url(query),
            "history_url": _history_url(query),
            "steps": steps,
            "lock": lock,
            "age": selectors.age_days(query),
            "can_answer": may_answer and query.state != DataQuery.State.CLOSED and not lock.refuses("query"),
            "correctable": correctable,
            "can_close": may_raise and query.state != DataQuery.State.CLOSED and not lock.refuses("query"),
            "can_reopen": may_raise and query.state != DataQuery.State.OPEN and not lock.refuses("query"),
            "answer_form": answer_form,
            "close_form": close_form,
            "reopen_form": reopen_form,
        },
    )


@login_required
def query_list(request, trial_id: int):  # type: ignore[no-untyped-def]
    """The worklist of a trial's queries (a coordinator sees his or her sites), oldest first."""
    trial = access.get_scoped_or_404(request.user, Trial.objects.all(), "view_clinical", pk=trial_id)
    state = request.GET.get("state", "live")
    if state not in {"live", "", *DataQuery.State.values}:
        state = "live"
    origin = request.GET.get("origin", "")
    if origin not in {"", *DataQuery.Origin.values}:
        origin = ""
    site, patient = int_param(request, "site"), int_param(request, "patient")
    queries = selectors.query_list(request.user, trial=trial.pk, state=state, site=site, patient=patient, origin=origin)
    page = Paginator(queries, PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [
        {
            "query": q,
            "target": selectors.target_label(q),
            "field": services.field_label(q.content_type.model_class(), q.field_name),
            "age": selectors.age_days(q, now),
        }
        for q in page
    ]
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "cleaning/query_list.html",
        {
            "trial": trial,
            "rows": rows,
            "page": page,
            "sites": access.sites_for(request.user, trial, "view_clinical"),
            # Unclosed queries per site of the user's scope (two SQL queries at any size).
            "counts": selectors.query_counts_by_site(request.user, trial),
            "filters": {"state": state, "site": site, "patient": patient, "origin": origin},
            "states": [("live", "Not closed"), *DataQuery.State.choices, ("", "All")],
            "origins": DataQuery.Origin.choices,
            "query_string": params.urlencode(),
        },
    )


# --- the casebook lock screen, behind the pre-lock checklist (issue 19) ----------------


@lock_gate(None)  # the lock screen itself is no casebook write
@login_required
def casebook_lock_view(request, patient_id: int):  # type: ignore[no-untyped-def]
    """A data manager freezes, locks or unlocks the casebook, with an e-signature; the
    pre-lock checklist is shown, and locking over it needs an acknowledged override with
    a reason (services.casebook_lock_checked)."""
    from patients import services as patient_services
    from patients.views import _CASEBOOK_ACTIONS, _lock_change_page

    patient = patient_selectors.patient_get(request.user, patient_id)
    if not access.can(request.user, "lock", patient.trial_id):
        raise PermissionDenied("Only a data manager of this trial freezes, locks and unlocks casebooks.")
    checklist = selectors.lock_checklist(patient)

    def change(action: str, password: str, reason: str, override: bool = False, override_reason: str = "") -> Any:
        if action == "locked":
            return services.casebook_lock_checked(
                user=request.user,
                patient=patient,
                password=password,
                reason=reason,
                override=override,
                override_reason=override_reason,
            )
        service = {"frozen": patient_services.casebook_freeze, "open": patient_services.casebook_unlock}[action]
        return service(user=request.user, patient=patient, password=password, reason=reason)

    return _lock_change_page(
        request,
        lock=patient_services.casebook_lock_get(patient),
        choices=_CASEBOOK_ACTIONS.__getitem__,
        change=change,
        owner=f"Casebook {patient.subject_id}",
        done=redirect("casebook_lock", patient_id=patient.pk),
        context={
            "patient": patient,
            "title": f"Casebook lock of {patient.subject_id}",
            "lock": patient.lock,
            "trial_locked": patient.lock.by_trial,
            "checklist": checklist,
        },
        form_class=CasebookLockForm,
    )


# --- voiding a record entered in error (issue 19) --------------------------------------


# One view for every voidable record type (services.voidable_models): the URL's
# ``<model>_id`` argument names the type, as the lock gate and the site-wall walker read it.


@data_entry_page
@login_required
def record_void(request, **kwargs: int):  # type: ignore[no-untyped-def]
    """The void screen of one record: the reason, then services.casebook_record_void."""
    record = selectors.voidable_record_get(request.user, kwargs)
    patient = record.patient
    if not access.can(request.user, "enter_data", patient.trial_id, patient.site_id):
        raise PermissionDenied("Records are voided by the site's coordinators.")
    form = VoidForm(request.POST or None, initial={"version": record.version})
    back = selectors.RECORD_PAGES[record._meta.label_lower]
    if request.method == "POST" and form.is_valid():
        try:
            services.casebook_record_void(
                user=request.user,
                target=record,
                reason=form.cleaned_data["void_reason"],
                expected_version=form.cleaned_data["version"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except EditConflict as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{record} voided; it is kept with your reason in the audit trail.")
            return redirect(back, patient_id=patient.pk)
    return render(
        request,
        "cleaning/record_void.html",
        {
            "patient": patient,
            "record": record,
            "form": form,
            "back": back,
            "title": f"Void {record._meta.verbose_name} {record} (entered in error)",
        },
    )
