"""Electronic signatures: apply one to a record version, and verify it later.

What is signed is the record's content at that moment (every concrete field but the
automatic timestamps, plus its version number), hashed with SHA-256. The signature row
carries an HMAC seal over its own fields and the record's identity, keyed with
``SIGNATURE_KEY`` (default: ``SECRET_KEY``; rotate by re-sealing, never silently).
"""

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone
from simple_history.models import HistoricalRecords
from simple_history.utils import bulk_update_with_history

from core.errors import SignatureRefused
from core.models import Signature

_UNSIGNED_FIELDS = {"created_at", "updated_at"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _signed(record: models.Model, field: models.Field) -> bool:
    # Not content: the automatic timestamps, a link from the record to its own signature
    # (set after signing), and what the model names in ``signature_unsigned_fields``
    # (e.g. the pointer to the decision that later superseded a signed one).
    unsigned = _UNSIGNED_FIELDS | set(getattr(record, "signature_unsigned_fields", ()))
    return field.name not in unsigned and getattr(field, "related_model", None) is not Signature


def record_hash(record: models.Model) -> str:
    content = {
        f.attname: _jsonable(getattr(record, f.attname)) for f in record._meta.concrete_fields if _signed(record, f)
    }
    content["__model__"] = record._meta.label_lower
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _seal(sig: Signature) -> str:
    key = getattr(settings, "SIGNATURE_KEY", settings.SECRET_KEY).encode()
    message = "|".join(
        [
            str(sig.content_type_id),
            str(sig.object_id),
            str(sig.signer_id or ""),
            sig.printed_name,
            sig.meaning,
            sig.signed_at.isoformat(),
            str(sig.record_version),
            sig.record_hash,
            "imported" if sig.imported else "live",
        ]
    )
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _request() -> HttpRequest:
    """The request being served (simple_history's middleware keeps it for the audit
    trail), or a stand-in for a signature applied outside a request (shell, import)."""
    request = getattr(HistoricalRecords.context, "request", None)
    if request is None:
        request = HttpRequest()
        request.META["REMOTE_ADDR"] = "127.0.0.1"
        request.path = request.path_info = "/(outside a request)"
    return request


LOCKED_MESSAGE = (
    "Too many wrong passwords (sign-in or signature): the account is locked for now; "
    "the record was not signed. Ask an administrator, or wait for the lockout to end."
)
# Written into every open session of a user whose account locks; the session middleware
# signs that session out on its next request and the sign-in page shows this.
LOCKED_OUT_SESSION_KEY = "signed_out_locked"
LOCKED_OUT_SIGNED_OUT = (
    "Signed out: too many wrong passwords (sign-in or signature), the account is locked. "
    "Ask an administrator to unlock it, or wait for the lockout to end."
)


def password_reentry_check(
    user: Any, password: str, wrong: str = "The password is not correct; the record was not signed."
) -> None:
    """The signer's password, re-entered, checked as a sign-in is (django-axes): each
    wrong one counts with the failed sign-ins of that username and address, is kept in
    the failure log, and at ``AXES_FAILURE_LIMIT`` locks the account, for signatures
    and sign-in alike. Otherwise the signature form would be a password oracle.

    A successful sign-in resets axes' counter, so wrong signature passwords are also
    counted on their own (``signature_failures``: ``SIGNATURE_FAILURE_LIMIT`` within
    ``SIGNATURE_FAILURE_WINDOW``, whatever sign-ins or right signature passwords came in
    between); reaching that limit locks the account through axes the same way. When the
    account locks, every open session of the user is ended (``sessions_end_locked``)."""
    request = _request()
    username = user.get_username()
    credentials = {"username": username}
    if AxesProxyHandler.is_locked(request, credentials):
        sessions_end_locked(user, request)
        raise SignatureRefused({"password": [LOCKED_MESSAGE]})
    if password and user.check_password(password):
        return
    if signature_failures(username) + 1 >= settings.SIGNATURE_FAILURE_LIMIT:
        _lockout_at_this_failure(request, username)
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
    if getattr(request, "axes_locked_out", False):
        # This refusal says so itself (form error or JSON 400), rather than axes'
        # middleware swapping the answer for its sign-in lockout page.
        request.axes_locked_out = False
        sessions_end_locked(user, request)
        raise SignatureRefused({"password": [LOCKED_MESSAGE]})
    raise SignatureRefused({"password": [wrong]})


def _sign_in_paths() -> set[str]:
    from django.urls import reverse

    return {reverse("login"), reverse("admin:login")}


def signature_failures(username: str) -> int:
    """Wrong signature passwords of ``username`` that count towards its own limit: those in
    the failure log (append-only; a sign-in does not erase it) within the last
    ``SIGNATURE_FAILURE_WINDOW`` and after the account's last lockout (an unlocked account
    starts again from zero). Failed sign-ins (the sign-in pages) are axes' own count."""
    since = timezone.now() - settings.SIGNATURE_FAILURE_WINDOW
    last_lockout = (
        AccessFailureLog.objects.filter(username=username, locked_out=True)
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    if last_lockout is not None and last_lockout > since:
        since = last_lockout
    failures = AccessFailureLog.objects.filter(username=username, attempt_time__gt=since)
    return failures.exclude(path_info__in=_sign_in_paths()).count()


def _lockout_at_this_failure(request: HttpRequest, username: str) -> None:
    """Make axes lock the account at the failure about to be reported: its attempt row for
    this username and client is brought to one below ``AXES_FAILURE_LIMIT``, so axes'
    own handler locks out, logs the failure with ``locked_out`` and refuses sign-ins
    until its cool-off ends or an administrator resets it."""
    below = max(get_failure_limit(request, {"username": username}) - 1, 0)
    with transaction.atomic():
        attempt, created = AccessAttempt.objects.select_for_update().get_or_create(
            username=username,
            ip_address=request.axes_ip_address,  # type: ignore[attr-defined]
            user_agent=request.axes_user_agent,  # type: ignore[attr-defined]
            defaults={
                "get_data": "",
                "post_data": "",
                "http_accept": request.axes_http_accept,  # type: ignore[attr-defined]
                "path_info": request.axes_path_info,  # type: ignore[attr-defined]
                "failures_since_start": below,
            },
        )
        if not created and attempt.failures_since_start < below:
            attempt.failures_since_start = below
            attempt.attempt_time = timezone.now()
            attempt.save(update_fields=["failures_since_start", "attempt_time"])


def sessions_end_locked(user: Any, request: HttpRequest | None = None) -> int:
    """Sign out every open session of ``user`` (its account just locked): each is marked,
    and ``core.middleware.SessionTimeoutMiddleware`` ends it on its next request with
    ``LOCKED_OUT_SIGNED_OUT`` on the sign-in page. Returns how many were marked."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    user_id = str(user.pk)
    current = getattr(request, "session", None)
    marked = 0
    for row in Session.objects.filter(expire_date__gt=timezone.now()):
        if current is not None and row.session_key == current.session_key:
            continue
        if row.get_decoded().get("_auth_user_id") != user_id:
            continue
        store = SessionStore(session_key=row.session_key)
        store[LOCKED_OUT_SESSION_KEY] = True
        store.save()
        marked += 1
    if current is not None and current.get("_auth_user_id") == user_id:
        # The request's own session is saved again when it answers: mark it there.
        current[LOCKED_OUT_SESSION_KEY] = True
        marked += 1
    return marked


def signature_apply(record: models.Model, *, user: Any, password: str, meaning: str) -> Signature:
    """Sign ``record`` as it is now. The signer re-enters the password (two components:
    the logged-in identity and the password, 21 CFR 11.200). One signer signs one version
    of a record once per meaning: a replayed form or request is refused."""
    if meaning not in Signature.Meaning.values:
        raise SignatureRefused({"meaning": [f"Unknown signature meaning {meaning!r}."]})
    password_reentry_check(user, password)
    with transaction.atomic():
        locked = type(record).objects.select_for_update().get(pk=record.pk)
        content_type = ContentType.objects.get_for_model(locked)
        version = getattr(locked, "version", 1)
        if Signature.objects.filter(
            content_type=content_type, object_id=locked.pk, signer=user, meaning=meaning, record_version=version
        ).exists():
            raise SignatureRefused(
                {"__all__": [f"You already signed version {version} of this record with this meaning."]}
            )
        sig = Signature(
            content_type=content_type,
            object_id=locked.pk,
            signer=user,
            printed_name=user.get_full_name() or user.get_username(),
            meaning=meaning,
            record_version=version,
            record_hash=record_hash(locked),
        )
        sig.signed_at = sig.signed_at.replace(microsecond=0)
        sig.seal = _seal(sig)
        sig.save()
    return sig


def signature_link(record: models.Model, signature: Signature, *, user: Any) -> None:
    """Point ``record.signature`` at the signature just applied to it, with a history row
    (who, when, "signed: ...") and without a new version: the link is not signed content
    (``_signed``) and the signature names the version it signed, which stays current."""
    record.signature = signature  # type: ignore[attr-defined]
    bulk_update_with_history(
        [record],
        type(record),
        ["signature"],
        default_user=user,
        default_change_reason=f"signed: {signature.get_meaning_display()}",
    )


@dataclass(frozen=True)
class Verification:
    status: str  # "valid", "invalidated", "tampered"
    message: str

    @property
    def valid(self) -> bool:
        return self.status == "valid"


def signature_verify(sig: Signature, record: models.Model | None = None) -> Verification:
    if not hmac.compare_digest(sig.seal, _seal(sig)):
        return Verification("tampered", "Signature failed verification: its stored data were altered.")
    if record is None:
        record = sig.content_type.get_object_for_this_type(pk=sig.object_id)
    if record._meta.label_lower != sig.content_type.model_class()._meta.label_lower or record.pk != sig.object_id:
        return Verification("tampered", "Signature does not belong to this record.")
    if record_hash(record) != sig.record_hash:
        return Verification(
            "invalidated",
            f"Record edited after signing (signed version {sig.record_version}, "
            f"now version {getattr(record, 'version', '?')}): signature no longer applies.",
        )
    # A record may rest on others (a DLT decision on its AE): it says when they changed.
    evidence_problem = getattr(record, "signature_evidence_problem", None)
    problem = evidence_problem() if callable(evidence_problem) else None
    if problem:
        return Verification("invalidated", problem)
    return Verification("valid", "Valid signature on the current version.")


def signatures_for(record: models.Model) -> list[tuple[Signature, Verification]]:
    ct = ContentType.objects.get_for_model(record)
    sigs = Signature.objects.filter(content_type=ct, object_id=record.pk).select_related("content_type")
    return [(s, signature_verify(s, record)) for s in sigs]
