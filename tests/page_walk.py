"""The seed trial as each role sees it, and a walk over every page they can reach by links:
shared by the label walk (tests/integration/test_labels.py) and the axe-core walk
(tests/browser/test_accessibility.py)."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse

from tests.factories import UserFactory, grant
from trial.models import RoleGrant, TrialComputation

BUNDLE = Path(__file__).resolve().parents[1] / "exchange" / "data" / "ino_post_hct_seed.json"
# Not pages of the app: the API (and its vendored docs), the admin, static files, sign-out.
NOT_PAGES = re.compile(r"^/(api/|admin/|static/|accounts/logout|session/)")
PER_PATTERN = 2  # pages of one URL pattern visited (/patients/1/, /patients/2/, then no more)


def seed_world():  # type: ignore[no-untyped-def]
    """The seed trial imported through the bundle importer, its results computed, and one
    user per role (the coordinator at the first site)."""
    from analysis.services import computation_run
    from exchange.bundle import bundle_import
    from safety.models import CtcaeTerm
    from safety.services import ctcae_dictionary_load
    from trial.services import computation_request

    if not CtcaeTerm.objects.exists():
        ctcae_dictionary_load()
    trial = bundle_import(json.loads(BUNDLE.read_text(encoding="utf-8")))
    for kind in TrialComputation.Kind.values:
        computation_request(trial.pk, kind)
        computation_run(trial.pk, kind)
    site = trial.sites.order_by("code").first()
    users = {}
    for role in RoleGrant.Role.values:
        users[role] = UserFactory(username=f"walk-{role}")
        grant(users[role], trial, role, site if role == RoleGrant.Role.COORDINATOR else None)
    # A record voided as entered in error, so the walks meet the voided-records tables too.
    from cleaning.services import casebook_record_void
    from patients.models import Assessment

    voided = Assessment.objects.filter(patient__trial=trial, patient__site=site).order_by("patient__subject_id", "id")
    casebook_record_void(user=users[RoleGrant.Role.COORDINATOR], target=voided.first(), reason="entered in error")
    return trial, users


def pattern_key(path: str) -> str:
    return re.sub(r"\d+", "N", path)


def links(html: str, base: str) -> list[str]:
    """The same-site page links of a page, as paths with their query strings."""
    found = []
    for href in re.findall(r'<a\b[^>]*\bhref="([^"#]+)', html):
        parsed = urlparse(urljoin("http://testserver" + base, href.replace("&amp;", "&")))
        if parsed.netloc not in {"testserver", ""} or NOT_PAGES.match(parsed.path):
            continue
        found.append(parsed.path + (f"?{parsed.query}" if parsed.query else ""))
    return found


def walk(fetch, start: str = "/", per_pattern_limit: int = PER_PATTERN):  # type: ignore[no-untyped-def]
    """Breadth-first over the pages reachable from ``start``; ``fetch(path)`` returns the HTML
    (or None to stop there). Yields (path, html)."""
    seen, queue, per_pattern = set(), [start], {}
    while queue:
        path = queue.pop(0)
        key = pattern_key(path.split("?")[0])
        if path in seen or per_pattern.get(key, 0) >= per_pattern_limit:
            continue
        seen.add(path)
        per_pattern[key] = per_pattern.get(key, 0) + 1
        html = fetch(path)
        if html is None:
            continue
        yield path, html
        queue.extend(link for link in links(html, path) if link not in seen)


class VisibleText(HTMLParser):
    """The text a reader sees: no scripts, styles, code samples or attribute values."""

    HIDDEN = {"script", "style", "code", "pre", "title"}

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.parts = 0, []

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        if tag in self.HIDDEN:
            self.depth += 1

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag in self.HIDDEN and self.depth:
            self.depth -= 1

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if not self.depth:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)
