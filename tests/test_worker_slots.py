"""`manage.py worker` gives each queue slots of its own, so webhook processing never waits
behind alert posts or Shopify API calls (tests/test_slow_alert_receivers.py shows it live)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from config import worker


def test_the_default_gives_webhooks_alerts_shopify_calls_and_maintenance_their_own_slots(settings):
    assert worker.parse_concurrency(settings.WORKER_CONCURRENCY) == {
        ("ingest",): 4, ("alerts",): 4, ("shopify",): 2, ("maintenance",): 2,
    }


def test_one_number_gives_every_queue_that_many_slots():
    assert worker.parse_concurrency("2") == {("ingest",): 2, ("shopify",): 2, ("alerts",): 2, ("maintenance",): 2}


def test_queues_joined_by_a_plus_share_their_slots():
    assert worker.parse_concurrency("ingest=3, alerts+shopify+maintenance=2") == {
        ("ingest",): 3, ("alerts", "shopify", "maintenance"): 2
    }


def test_a_worker_for_some_queues_gets_slots_for_those_only():
    assert worker.parse_concurrency("ingest=4,alerts=4,shopify=2", ["ingest"]) == {("ingest",): 4}


def test_a_queue_the_spec_adds_gets_slots_of_its_own():
    assert worker.parse_concurrency("ingest=4,alerts=4,shopify=2,maintenance=1,reports=1")[("reports",)] == 1


@pytest.mark.parametrize("spec", [
    pytest.param("ingest=4,alerts=4", id="a-queue-left-without-slots"),
    pytest.param("ingest=four,alerts=4,shopify=2", id="slots-not-a-number"),
    pytest.param("ingest=0,alerts=4,shopify=2", id="no-slots"),
    pytest.param("=4", id="no-queue"),
])
def test_a_malformed_concurrency_stops_the_command_with_its_reason(spec):
    with pytest.raises(CommandError, match="--concurrency"):
        call_command("worker", "--concurrency", spec)
