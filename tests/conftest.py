"""Fixtures of the whole-system tests: a signed-in Chromium."""

from __future__ import annotations

import pytest

from tests.support.browser import chromium, session_of


@pytest.fixture
def alice_browser(web, personas):
    """A Chromium context signed in as alice (an owner)."""
    with chromium(signed_in=(web.url, session_of(personas["alice"]))) as context:
        yield context
