"""Sponsor dead ends (issue 19 item 6) and the error pages (issue 16 item 20): Table 2 opens
for a sponsor, a refused page says why and links back, no page cites a repository file,
the sponsor's home links Exports, and any user manages their own API tokens (key shown once,
audited revoke with a reason)."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from core.models import ApiToken
from core.views_tokens import MAX_ACTIVE_TOKENS
from tests.factories import AdverseEventFactory, DoseLevelFactory, PatientFactory

pytestmark = pytest.mark.django_db
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_sponsor_opens_table2_from_the_trial_page(world, login):  # type: ignore[no-untyped-def]
    level = DoseLevelFactory(trial=world["trial"], level=1)
    for site in (world["site_a"], world["site_b"]):
        p = PatientFactory(trial=world["trial"], site=site, dose_level=level)
        AdverseEventFactory(patient=p, grade=3)
    client = login(world["sponsor"])
    url = reverse("trial_ae_summary", args=[world["trial"].pk])
    assert url in client.get(reverse("trial_detail", args=[world["trial"].pk])).content.decode()
    response = client.get(url)
    assert response.status_code == 200
    assert "Overall (n = 2)" in response.content.decode()  # both sites: counts, no subject IDs
    api = client.get(f"/api/v1/trials/{world['trial'].pk}/ae-summary/")
    assert api.status_code == 200 and api.json()["overall"]["patients"] == 2
    # A coordinator still counts only the own site's patients.
    assert "Overall (n = 1)" in login(world["coordinator_a"]).get(url).content.decode()


def test_refused_page_says_why_and_links_back(world, login):  # type: ignore[no-untyped-def]
    client = login(world["sponsor"])
    response = client.get(reverse("trial_dashboard", args=[world["trial"].pk]))
    assert response.status_code == 403
    body = response.content.decode()
    assert "The dashboard shows patient data" in body
    assert f'href="{reverse("trial_detail", args=[world["trial"].pk])}"' in body and "Back to the trial" in body
    assert '<main id="main"' in body  # the site's own page, not a bare 403
    missing = client.get("/trials/999999/")
    assert missing.status_code == 404 and "Back to your trials" in missing.content.decode()


def test_no_page_cites_a_repository_file(world, login):  # type: ignore[no-untyped-def]
    cited = [
        f"{path.relative_to(TEMPLATES)}: {m.group(0)}"
        for path in TEMPLATES.rglob("*.html")
        for m in re.finditer(r"\b(?:docs|shared)/[\w./-]+\.md\b", path.read_text(encoding="utf-8"))
    ]
    assert not cited, cited


def test_sponsor_home_links_exports_and_tokens(world, login):  # type: ignore[no-untyped-def]
    body = login(world["sponsor"]).get("/").content.decode()
    assert reverse("trial_exports", args=[world["trial"].pk]) in body
    assert reverse("api_tokens") in body
    exports = login(world["sponsor"]).get(reverse("trial_exports", args=[world["trial"].pk])).content.decode()
    assert reverse("api_tokens") in exports and reverse("api-docs") in exports
    assert (
        reverse("trial_exports", args=[world["trial"].pk])
        not in login(world["coordinator_a"]).get("/").content.decode()
    )


def test_favicon(client, world):  # type: ignore[no-untyped-def]
    body = client.get("/accounts/login/").content.decode()
    href = re.search(r'<link rel="icon" href="([^"]+)"', body).group(1)
    assert (Path(__file__).resolve().parents[2] / "static" / href.split("/static/")[1]).is_file()


def test_api_tokens_create_once_list_revoke(world, login):  # type: ignore[no-untyped-def]
    sponsor = world["sponsor"]
    client = login(sponsor)
    url = reverse("api_tokens")
    response = client.post(url, {"action": "create", "name": "SAS nightly pull"})
    assert response.status_code == 200
    key = re.search(r'id="new-token-key"[^>]*value="(td_[^"]+)"', response.content.decode()).group(1)
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(user=sponsor)
    assert token.name == "SAS nightly pull" and token.key_hash != key
    # The key works on the API, and is never shown again.
    assert client.get("/api/v1/trials/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    listing = client.get(url).content.decode()
    assert key not in listing and token.prefix in listing and "SAS nightly pull" in listing
    assert key not in str(client.session.items())
    # Issue is audited: who and why.
    issued = token.history.order_by("history_id").first()
    assert issued.history_user == sponsor and issued.history_change_reason == "token issued"

    # A revoke needs a reason; another user's token cannot be revoked from here.
    other, _ = __import__("core.tokens", fromlist=["token_issue"]).token_issue(user=world["investigator"], name="x")
    assert client.post(url, {"action": "revoke", "token": other.pk, "reason": "not mine"}).status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None
    client.post(url, {"action": "revoke", "token": token.pk, "reason": ""})
    token.refresh_from_db()
    assert token.revoked_at is None
    response = client.post(url, {"action": "revoke", "token": token.pk, "reason": "laptop lost"}, follow=True)
    token.refresh_from_db()
    assert token.revoked_at is not None and "revoked" in response.content.decode()
    revoked = token.history.order_by("-history_id").first()
    assert revoked.history_user == sponsor and "laptop lost" in revoked.history_change_reason
    assert client.get("/api/v1/trials/", HTTP_AUTHORIZATION=f"Token {key}").status_code in {401, 403}


def test_api_tokens_are_limited_and_named(world, login):  # type: ignore[no-untyped-def]
    client = login(world["coordinator_a"])
    url = reverse("api_tokens")
    assert "This field is required" in client.post(url, {"action": "create", "name": ""}).content.decode()
    for i in range(MAX_ACTIVE_TOKENS):
        client.post(url, {"action": "create", "name": f"t{i}"})
    body = client.post(url, {"action": "create", "name": "one too many"}).content.decode()
    assert "revoke one first" in body and 'id="new-token-key"' not in body
    assert ApiToken.objects.filter(user=world["coordinator_a"]).count() == MAX_ACTIVE_TOKENS
