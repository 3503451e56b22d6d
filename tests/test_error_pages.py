"""Refused and missing pages say what happened in OpsPulse's own page, and a refusal
leaves one line in the log, not a traceback."""

from __future__ import annotations

import copy
import io
import logging.config

import pytest
from django.template.loader import render_to_string
from django.utils.log import configure_logging

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(settings):
    """What the console handler writes while the test runs."""
    config = copy.deepcopy(settings.LOGGING)
    written = io.StringIO()
    config["handlers"]["console"]["stream"] = written
    configure_logging("logging.config.dictConfig", config)
    try:
        yield written
    finally:
        logging.config.dictConfig(settings.LOGGING)


def test_a_merchant_opening_the_admin_is_told_it_is_for_operators_and_the_log_has_no_traceback(
    client, personas, log
):
    client.force_login(personas["alice"])

    refused = client.get("/admin/", follow=True)

    assert refused.status_code == 403
    page = refused.content.decode()
    assert "The admin is for OpsPulse's operators" in page and "manage.py createsuperuser" in page
    assert "Back to your stores" in page
    assert "Forbidden (Permission denied): /admin/login/" in log.getvalue()
    assert "Traceback" not in log.getvalue()


def test_another_accounts_store_is_a_plain_not_found_page(client, personas, shopify_store):
    client.force_login(personas["charlie"])

    missing = client.get(f"/stores/{shopify_store.public_id}/")

    assert missing.status_code == 404
    page = missing.content.decode()
    assert "This page doesn't exist" in page and shopify_store.name not in page


def test_the_server_error_page_needs_no_request_or_database():
    page = render_to_string("500.html")

    assert "Something went wrong on our side" in page and "/static/" in page


def test_a_server_error_keeps_its_traceback_in_the_log(log):
    try:
        raise RuntimeError("the database went away")
    except RuntimeError:
        logging.getLogger("django.request").error(
            "Internal Server Error: /", exc_info=True, extra={"status_code": 500}
        )

    assert "Traceback" in log.getvalue() and "the database went away" in log.getvalue()
