"""Sign-in, sign-out, session limits, lockout and API tokens."""

import time
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from core.models import ApiToken, token_hash
from core.tokens import token_issue, token_revoke
from tests.factories import PASSWORD, UserFactory


def _sign_in(client, username, password=PASSWORD, ip="10.0.0.1"):  # type: ignore[no-untyped-def]
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_login_and_logout_invalidates_the_session(client, world):  # type: ignore[no-untyped-def]
    assert _sign_in(client, "coord_a").status_code == 302
    key = client.session.session_key
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    # Replaying the old cookie does not bring the session back.
    client.cookies["sessionid"] = key
    assert client.get("/").status_code == 302


def test_idle_session_ends_after_30_minutes(client, world, settings):  # type: ignore[no-untyped-def]
    _sign_in(client, "coord_a")
    assert client.get("/").status_code == 200
    session = client.session
    session["last_activity"] = time.time() - settings.SESSION_IDLE_TIMEOUT.total_seconds() - 1
    session.save()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert "inactivity" in client.get(response["Location"]).content.decode()


def test_session_within_idle_limit_stays(client, world, settings):  # type: ignore[no-untyped-def]
    _sign_in(client, "coord_a")
    client.get("/")
    session = client.session
    session["last_activity"] = time.time() - settings.SESSION_IDLE_TIMEOUT.total_seconds() + 60
    session.save()
    assert client.get("/").status_code == 200


def test_absolute_limit_ends_an_active_session(client, world, settings):  # type: ignore[no-untyped-def]
    _sign_in(client, "coord_a")
    client.get("/")
    session = client.session
    session["auth_started"] = time.time() - settings.SESSION_ABSOLUTE_TIMEOUT.total_seconds() - 1
    session.save()
    response = client.get("/")
    assert response.status_code == 302
    assert "12 hours" in client.get(response["Location"]).content.decode()


def test_idle_warning_is_on_every_page(client, world):  # type: ignore[no-untyped-def]
    _sign_in(client, "coord_a")
    page = client.get("/").content.decode()
    assert 'data-idle-seconds="1800"' in page and 'data-warning-seconds="300"' in page


def test_background_polling_does_not_keep_a_session_alive(client, world, settings):  # type: ignore[no-untyped-def]
    _sign_in(client, "coord_a")
    client.get("/")
    before = client.session["last_activity"]
    time.sleep(0.01)
    client.get("/", HTTP_X_TRIALDESK_BACKGROUND="1")
    assert client.session["last_activity"] == before
    client.post("/session/keepalive/")
    assert client.session["last_activity"] > before


def test_lockout_per_username(client, world, settings):  # type: ignore[no-untyped-def]
    for i in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "coord_a", "wrong", ip=f"10.0.1.{i}")  # a different address each time
    response = _sign_in(client, "coord_a", ip="10.0.2.1")  # right password, still locked
    assert response.status_code == 429 and "locked" in response.content.decode()
    assert _sign_in(client, "coord_b", ip="10.0.2.1").status_code == 302  # other users unaffected


def test_lockout_per_address(client, world, settings):  # type: ignore[no-untyped-def]
    for i in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, f"guess{i}", "wrong", ip="10.9.9.9")  # a different username each time
    assert _sign_in(client, "coord_a", ip="10.9.9.9").status_code == 429
    assert _sign_in(client, "coord_a", ip="10.9.9.8").status_code == 302


def test_api_token_is_stored_hashed_and_authenticates(client, world):  # type: ignore[no-untyped-def]
    token, key = token_issue(user=world["investigator"], name="nightly pull")
    assert key not in {token.key_hash, token.prefix} and token.key_hash == token_hash(key)
    assert not ApiToken.objects.filter(key_hash=key).exists()
    assert token.last_used_at is None
    for scheme in ("Token", "Bearer"):
        assert client.get("/api/v1/trials/", HTTP_AUTHORIZATION=f"{scheme} {key}").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_expired_and_revoked_tokens_are_refused(client, world):  # type: ignore[no-untyped-def]
    token, key = token_issue(user=world["investigator"], name="t", lifetime=timedelta(days=1))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/v1/trials/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    token2, key2 = token_issue(user=world["investigator"], name="t2")
    token_revoke(token2, by=world["admin"], reason="laptop lost")
    assert client.get("/api/v1/trials/", HTTP_AUTHORIZATION=f"Token {key2}").status_code == 401
    assert token2.history.first().history_change_reason == "laptop lost"


def test_a_locked_out_account_is_refused_with_its_api_token(client, world, settings):  # type: ignore[no-untyped-def]
    from axes.models import AccessAttempt, AccessFailureLog
    from django.core.management import call_command

    _token, key = token_issue(user=world["investigator"], name="nightly pull")
    auth = {"HTTP_AUTHORIZATION": f"Token {key}", "REMOTE_ADDR": "10.0.3.1"}
    username = world["investigator"].username
    assert client.get("/api/v1/trials/", **auth).status_code == 200
    for i in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, username, "wrong", ip=f"10.0.1.{i}")  # the account, not this address
    before = AccessFailureLog.objects.filter(username=username).count()
    for path in ("/api/v1/trials/", "/api/v1/patients/"):
        response = client.get(path, **auth)
        assert response.status_code == 403, response.content
        assert "account is locked" in response.json()["detail"] and response.json()["errors"] == {}
    # Each refusal is in axes' failure log, marked as a lockout, on the API path.
    refused = AccessFailureLog.objects.filter(username=username).order_by("-attempt_time", "-id")
    assert refused.count() == before + 2 and refused[0].locked_out and refused[0].path_info == "/api/v1/patients/"
    # The refusals are not new failures: the lockout ends when its cool-off does ...
    AccessAttempt.objects.filter(username=username).update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    assert client.get("/api/v1/trials/", **auth).status_code == 200
    # ... or when an administrator unlocks the account.
    for i in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, username, "wrong", ip=f"10.0.4.{i}")
    assert client.get("/api/v1/trials/", **auth).status_code == 403
    call_command("axes_reset_username", username)
    assert client.get("/api/v1/trials/", **auth).status_code == 200


def test_unauthenticated_api_answers_401(client, db):  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/patients/")
    assert response.status_code == 401 and response.json()["errors"] == {}


def test_role_grants_and_revocations_are_audited(world):  # type: ignore[no-untyped-def]
    from trial.models import RoleGrant
    from trial.services import role_grant, role_revoke

    user = UserFactory(username="newcomer")
    grant = role_grant(user=user, trial=world["trial"], role="investigator", by=world["admin"], reason="joins the SRC")
    role_revoke(grant, by=world["admin"], reason="left the institution")
    history = list(RoleGrant.history.filter(id=grant.pk).order_by("history_date"))
    assert [(h.history_change_reason, h.history_user) for h in history] == [
        ("joins the SRC", world["admin"]),
        ("left the institution", world["admin"]),
    ]
    assert history[-1].revoked_at is not None


@pytest.mark.parametrize(
    ("role", "site_key", "message"),
    [("coordinator", None, "must be given a site"), ("investigator", "site_a", "Only site coordinators")],
)
def test_role_grant_validation(world, role, site_key, message):  # type: ignore[no-untyped-def]
    from django.core.exceptions import ValidationError

    from trial.services import role_grant

    with pytest.raises(ValidationError, match=message):
        role_grant(
            user=UserFactory(), trial=world["trial"], role=role, site=world.get(site_key) if site_key else None,
            by=world["admin"], reason="r",
        )  # fmt: skip
