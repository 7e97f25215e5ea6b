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
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.http import HttpRequest
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


def password_reentry_check(
    user: Any, password: str, wrong: str = "The password is not correct; the record was not signed."
) -> None:
    """The signer's password, re-entered, checked as a sign-in is (django-axes): each
    wrong one counts with the failed sign-ins of that username and address, is kept in
    the failure log, and at ``AXES_FAILURE_LIMIT`` locks the account, for signatures
    and sign-in alike. Otherwise the signature form would be a password oracle."""
    request = _request()
    credentials = {"username": user.get_username()}
    if AxesProxyHandler.is_locked(request, credentials):
        raise SignatureRefused({"password": [LOCKED_MESSAGE]})
    if password and user.check_password(password):
        return
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
    if getattr(request, "axes_locked_out", False):
        # This refusal says so itself (form error or JSON 400), rather than axes'
        # middleware swapping the answer for its sign-in lockout page.
        request.axes_locked_out = False
        raise SignatureRefused({"password": [LOCKED_MESSAGE]})
    raise SignatureRefused({"password": [wrong]})


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
