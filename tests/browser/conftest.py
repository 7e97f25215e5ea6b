"""Headless Debian chromium driven by Playwright (no browser download: the system one)."""

import os
import shutil
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import missing

ARTIFACTS = Path(os.environ.get("TRIALDESK_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))


@pytest.fixture
def page(postgres_required, live_server):  # type: ignore[no-untyped-def]
    # Transactional tests empty tables between tests, which the audit triggers refuse
    # on SQLite (DELETE); on PostgreSQL the runner uses TRUNCATE. Hence PostgreSQL.
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        missing("Debian chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15000)
        # The strict Content-Security-Policy (core.middleware) must block nothing a page
        # needs: every journey fails on a violation (issue 16 item 13).
        violations: list[str] = []
        page.on(
            "console",
            lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
        )
        yield page
        assert not violations, violations
        context.close()
        browser.close()
        # ORM calls made while Playwright's loop runs (fixtures, the test) get a
        # connection of their own context; close it there, or it outlives the run and
        # the test database cannot be dropped.
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
