"""Issue 16 item 10: wrong signature passwords that lock the account end its open
sessions (the next request is signed out and the sign-in page says why), the lockout is
in the failure log, and a sign-in in between does not restart the count of wrong
signature passwords (``SIGNATURE_FAILURE_LIMIT`` within ``SIGNATURE_FAILURE_WINDOW``)."""

import datetime
from types import SimpleNamespace

import pytest
from axes.models import AccessFailureLog
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from core import signatures
from core.models import Signature
from tests.factories import PASSWORD, PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = 5
    settings.SIGNATURE_FAILURE_LIMIT = 5
    settings.SIGNATURE_FAILURE_WINDOW = datetime.timedelta(hours=12)
    return settings


def _signed_in() -> Client:
    """A browser that signed in through the sign-in form (axes sees the sign-in, which
    resets its own count of failures)."""
    browser = Client()
    answer = browser.post("/accounts/login/", {"username": "inv", "password": PASSWORD})
    assert answer.status_code == 302 and "_auth_user_id" in browser.session
    return browser


def _sign(browser: Client, patient, password: str) -> str:  # type: ignore[no-untyped-def]
    answer = browser.post(f"/patients/{patient.pk}/sign/", {"password": password})
    if answer.status_code == 302:
        assert not answer["Location"].startswith("/accounts/login/"), answer["Location"]
        return "signed"
    assert answer.status_code == 200, answer.status_code
    page = answer.content.decode()
    if "the account is locked" in page:
        return "locked"
    assert "The password is not correct" in page
    return "wrong"


def test_a_signature_lockout_ends_every_open_session_and_is_logged(world, limits) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_a"], trial=world["trial"])
    here, elsewhere = _signed_in(), _signed_in()
    assert [_sign(here, patient, "guess") for _ in range(5)] == ["wrong"] * 4 + ["locked"]
    # The lockout is in the (append-only) failure log, on the signing page's path.
    lockout = AccessFailureLog.objects.get(username="inv", locked_out=True)
    assert lockout.path_info == f"/patients/{patient.pk}/sign/"
    assert AccessFailureLog.objects.filter(username="inv").count() == 5
    # Both browsers are signed out at their next request; the sign-in page says why.
    for browser in (here, elsewhere):
        answer = browser.get(f"/patients/{patient.pk}/", follow=True)
        assert answer.redirect_chain[-1][0].startswith("/accounts/login/")
        assert "_auth_user_id" not in browser.session
        assert "the account is locked" in answer.content.decode()
    # And the account does not sign in again, right password or not.
    again = Client().post("/accounts/login/", {"username": "inv", "password": PASSWORD})
    assert again.status_code == 429 and "_auth_user_id" not in again.client.session
    assert not Signature.objects.exists()


def test_a_sign_in_or_a_right_signature_password_does_not_restart_the_count(world, limits) -> None:  # type: ignore[no-untyped-def]
    """4 wrong, sign in again, 1 wrong: locked (axes alone would have reset at the sign-in
    and allowed 4 more guesses after every sign-in). A right password in between signs,
    and restarts nothing either."""
    patient = PatientFactory(site=world["site_a"], trial=world["trial"])
    other = PatientFactory(site=world["site_a"], trial=world["trial"])
    browser = _signed_in()
    assert [_sign(browser, patient, "guess") for _ in range(2)] == ["wrong", "wrong"]
    assert _sign(browser, other, PASSWORD) == "signed"
    assert [_sign(browser, patient, "guess") for _ in range(2)] == ["wrong", "wrong"]
    browser = _signed_in()  # a successful sign-in: axes' own count is back to zero
    assert _sign(browser, patient, "guess") == "locked"
    assert AccessFailureLog.objects.filter(username="inv", locked_out=True).count() == 1
    assert Client().post("/accounts/login/", {"username": "inv", "password": PASSWORD}).status_code == 429
    assert signatures.signature_failures("inv") == 0  # counted again from the lockout on


def test_wrong_signature_passwords_older_than_the_window_do_not_count(world, limits, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_a"], trial=world["trial"])
    browser = _signed_in()
    assert [_sign(browser, patient, "guess") for _ in range(4)] == ["wrong"] * 4
    assert signatures.signature_failures("inv") == 4
    browser = _signed_in()
    later = timezone.now() + datetime.timedelta(hours=12, minutes=1)
    # The clock of the signature count only (sessions and axes keep the real one).
    monkeypatch.setattr(signatures, "timezone", SimpleNamespace(now=lambda: later))
    assert signatures.signature_failures("inv") == 0
    assert _sign(browser, patient, "guess") == "wrong"


def test_an_unlocked_account_starts_its_signature_count_again(world, limits) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(site=world["site_a"], trial=world["trial"])
    browser = _signed_in()
    assert [_sign(browser, patient, "guess") for _ in range(5)][-1] == "locked"
    call_command("axes_reset_username", "inv")  # an administrator unlocks the account
    browser = _signed_in()
    assert _sign(browser, patient, "guess") == "wrong"
    assert _sign(browser, patient, PASSWORD) == "signed"


def test_failed_sign_ins_are_not_counted_as_signature_failures(world, limits) -> None:  # type: ignore[no-untyped-def]
    for _ in range(4):
        Client().post("/accounts/login/", {"username": "inv", "password": "guess"})
    assert signatures.signature_failures("inv") == 0
    patient = PatientFactory(site=world["site_a"], trial=world["trial"])
    browser = _signed_in()  # resets axes' count of the failed sign-ins
    assert _sign(browser, patient, "guess") == "wrong"
