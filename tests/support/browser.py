"""Debian's Chromium driven by Playwright, signed in with a session taken beforehand."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support.processes import ROOT
from tests.support.stores import client_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-results" / "screenshots"
# Phone, laptop, TV; a 4K TV runs at twice the pixel density.
VIEWPORTS = [
    {"width": 390, "height": 844},
    {"width": 1440, "height": 900},
    {"width": 1920, "height": 1080},
    {"width": 3840, "height": 2160},
]


def session_of(user) -> str:
    """A signed-in session id for `user`.

    Take it before the browser starts: Playwright's sync API keeps an event loop running
    in this thread, under which Django would open (and never close) a separate connection.
    """
    return client_for(user).cookies["sessionid"].value


@contextlib.contextmanager
def chromium(*, width: int = 1400, height: int = 1000, signed_in: tuple[str, str] | None = None) -> Iterator:
    """A context of Debian's Chromium; with `signed_in` (site URL, session id), signed in there."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": width, "height": height})
        if signed_in is not None:
            url, session_id = signed_in
            context.add_cookies([{"name": "sessionid", "value": session_id, "url": url}])
        try:
            yield context
        finally:
            context.close()
            browser.close()
