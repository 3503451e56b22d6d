"""Fixtures of the fault tests: four stores in differing timezones, and workers that die fast.

The ledger, the deliveries and the books check they use are in tests/support/chaos.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.chaos import FAST_HEARTBEAT
from tests.support.processes import Worker
from tests.support.stores import SHOPIFY_SECRET, WOO_SECRET, make_store


@pytest.fixture
def stores(personas):
    """Two Shopify and two WooCommerce stores in timezones whose hours and days differ."""
    account = personas["account"]
    return [
        make_store(account, platform="shopify", domain="north-apparel.myshopify.com", secret=SHOPIFY_SECRET,
                   timezone="Europe/Paris"),
        make_store(account, platform="shopify", domain="south-apparel.myshopify.com", secret=SHOPIFY_SECRET,
                   timezone="Asia/Kolkata", currency="INR"),
        make_store(account, platform="woocommerce", domain="east.example", secret=WOO_SECRET,
                   timezone="America/New_York", currency="USD"),
        make_store(account, platform="woocommerce", domain="west.example", secret=WOO_SECRET,
                   timezone="Australia/Adelaide", currency="AUD"),
    ]


@pytest.fixture
def processes(process_logs) -> Iterator[list]:
    """Processes a test starts; stopped (in reverse order) when it ends."""
    started: list = []
    yield started
    for process in reversed(started):
        process.stop()


@pytest.fixture
def start_worker(processes, process_logs):
    """Start a worker whose heartbeat lets a dead one be pruned after 2 s."""

    def start(name: str, **env: str) -> Worker:
        worker = Worker(process_logs, name, **{**FAST_HEARTBEAT, **env})
        processes.append(worker)
        return worker

    return start
