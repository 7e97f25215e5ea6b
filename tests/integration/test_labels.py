"""Human labels everywhere a code shows (issue 16 item 20): every page of the seed trial, as
every role, shows no raw enumeration code (``mtd_declared``, ``no_dlt``, ``storer_a``...)
in its visible text; and dates in one format (issue 19 item 10)."""

import re

import pytest

from dashboard.labels import label, label_codes_in
from patients.models import Patient, Screening
from tests.page_walk import seed_world, visible_text, walk

pytestmark = pytest.mark.django_db

CODE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
# One-word eligibility and transplant codes (disease status, conditioning) that the
# eligibility reasons quote: "transplanted in cr2", "mac conditioning" (issue 19 item 7).
WORD_CODE = re.compile(r"\b(?:cr[123]|mac|ric|nma)\b")
# Django's English date formats ("Dec. 21, 2020", "21 Dec 2020"), slashes, a bare ISO "T".
NON_ISO_DATE = re.compile(
    r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.? \d{1,2}, \d{4}\b"
    r"|\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{4}\b"
    r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\d{4}-\d{2}-\d{2}T\d{2}"
)
# The audit trails show stored values as they were stored (the records' own pages label them).
NOT_WALKED = re.compile(r"/history/$")


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("mtd_declared", "MTD declared"),
        ("non_hematologic_grade3_related", "Non-haematological grade ≥ 3, related"),
        ("storer_a", "Storer design A (textbook 3+3)"),
        ("no_dlt", "No DLT"),
        ("not_eligible", "Not eligible (screen failure)"),
        ("data_manager", "Data manager"),
        ("something_new", "something new"),  # a code nobody labelled yet still reads as words
        ("INO-POST-HCT", "INO-POST-HCT"),
    ],
)
def test_label_table(code, text):  # type: ignore[no-untyped-def]
    assert label(code) == text


def test_codes_inside_sentences():  # type: ignore[no-untyped-def]
    assert label_codes_in("diagnosis b_all") == f"diagnosis {label('b_all')}"
    assert label_codes_in("(b) transplanted in cr2; (c) mac conditioning") == (
        "(b) transplanted in CR2; (c) Myeloablative (MAC) conditioning"
    )
    assert label_codes_in("macrocytosis, a ricin") == "macrocytosis, a ricin"  # whole words only
    assert "_" not in label("b_all")


def test_no_raw_code_or_other_date_format_on_any_page(client):  # type: ignore[no-untyped-def]
    trial, users = seed_world()
    assert Screening.objects.filter(patient__trial=trial, result="not_eligible").exists()
    problems, pages, voided_tables = [], 0, 0
    for role, user in users.items():
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")

        def fetch(path):  # type: ignore[no-untyped-def]
            if NOT_WALKED.search(path.split("?")[0]):
                return None
            response = client.get(path)
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                return None
            return response.content.decode()

        # Every screening and eligibility page too, not only the first two the walk reaches:
        # they quote codes in the criteria's reasons (eligible, failed and incomplete screenings).
        eligibility = [
            url
            for p in Patient.objects.filter(trial=trial)
            for url in (f"/patients/{p.pk}/eligibility/", *[f"/screenings/{s.pk}/" for s in p.screenings.all()])
        ]
        for path, html in [*walk(fetch), *[(url, fetch(url)) for url in eligibility]]:
            if html is None:
                continue
            pages += 1
            voided_tables += 'data-testid="voided-' in html
            text = visible_text(html)
            for code in sorted(set(CODE.findall(text)) | set(WORD_CODE.findall(text))):
                problems.append(f"{role} {path}: raw code {code!r}")
            for date in sorted(set(NON_ISO_DATE.findall(text))):
                problems.append(f"{role} {path}: date {date!r} is not YYYY-MM-DD")
    assert pages > 60, pages  # the walk really went through the app
    assert voided_tables, "the walk met no list of voided records (page_walk.seed_world voids one)"
    assert not problems, "\n".join(problems)
