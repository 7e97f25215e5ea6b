"""API tokens: issue, revoke, authenticate. Only a hash is stored; the key is shown once."""

import logging
import secrets
from datetime import timedelta
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessFailureLog
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from core.models import ApiToken, token_hash

logger = logging.getLogger(__name__)

# The answer to a token request of an account django-axes has locked out.
ACCOUNT_LOCKED_REFUSAL = (
    "The account is locked: too many wrong passwords (sign-in or signature). Its API tokens "
    "work again when the lockout ends or an administrator unlocks the account."
)

# last_used_at is written at most this often per token, so a busy client does not turn
# every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_issue(
    *, user: Any, name: str, created_by: Any = None, lifetime: timedelta | None = None
) -> tuple[ApiToken, str]:
    """Create a token; return it with the plaintext key (never stored)."""
    key = "td_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken(
            user=user,
            name=name,
            prefix=key[:10],
            key_hash=token_hash(key),
            created_by=created_by,
            expires_at=timezone.now() + (lifetime or settings.API_TOKEN_LIFETIME),
        )
        token._history_user = created_by  # type: ignore[attr-defined]
        token._change_reason = "token issued"  # type: ignore[attr-defined]
        token.save()
    return token, key


def token_revoke(token: ApiToken, *, by: Any, reason: str = "revoked") -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token._history_user = by  # type: ignore[attr-defined]
        token._change_reason = reason  # type: ignore[attr-defined]
        token.save(update_fields=["revoked_at"])
    return token


def token_authenticate(key: str) -> ApiToken | None:
    """The active token for ``key``, or None. Records when it was last used."""
    token = ApiToken.objects.select_related("user").filter(key_hash=token_hash(key)).first()
    if token is None or not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        # A plain UPDATE: last use is operational data, not an audited change.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_account_locked(request: HttpRequest, user: Any) -> bool:
    """Whether django-axes has locked ``user`` out (or the client's address, as for the
    sign-in pages): asked with the same credentials a sign-in of that username gives.
    A refusal is kept in axes' failure log (``locked_out``, the request's path) and the
    log, like a refused sign-in; it does not count as a new failure, so a client that
    keeps calling does not extend the lockout."""
    credentials = {"username": user.get_username()}
    if not AxesProxyHandler.is_locked(request, credentials):
        return False
    AccessFailureLog.objects.create(
        username=credentials["username"],
        ip_address=request.axes_ip_address,  # type: ignore[attr-defined]
        user_agent=request.axes_user_agent,  # type: ignore[attr-defined]
        http_accept=request.axes_http_accept,  # type: ignore[attr-defined]
        path_info=request.axes_path_info,  # type: ignore[attr-defined]
        attempt_time=timezone.now(),
        locked_out=True,
    )
    logger.warning(
        "API token refused: account %s is locked out (address %s, path %s).",
        credentials["username"],
        request.axes_ip_address,  # type: ignore[attr-defined]
        request.axes_path_info,  # type: ignore[attr-defined]
    )
    return True
