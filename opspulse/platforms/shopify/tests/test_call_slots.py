"""API calls to one store are spaced across every process: 2 per second at most."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from django.db import connection, transaction

from opspulse.platforms.shopify.client import wait_for_call_slot
from tests.factories import StoreFactory
from tests.support.processes import ROOT, process_env

pytestmark = pytest.mark.django_db(transaction=True)


def most_starts_in_one_second(starts: list[float]) -> int:
    starts = sorted(starts)
    return max(sum(1 for t in starts if first <= t < first + 1.0) for first in starts)


def test_calls_from_several_processes_to_one_store_never_exceed_two_per_second(settings):
    store = StoreFactory()
    other_store = StoreFactory()
    script = (
        "import django, sys, time; django.setup();"
        "from opspulse.platforms.shopify.client import wait_for_call_slot;"
        "[(wait_for_call_slot(int(sys.argv[1])), print(time.time(), flush=True)) for _ in range(4)]"
    )
    env = process_env()
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(store.pk)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    # Meanwhile another store's calls are not held up by this one's.
    other_started = time.time()
    for _ in range(2):
        wait_for_call_slot(other_store.pk)
    other_elapsed = time.time() - other_started
    starts = []
    for process in processes:
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        starts.extend(float(line) for line in output.split())

    assert len(starts) == 12
    assert most_starts_in_one_second(starts) <= 2
    # Each start that far after the one before.
    assert max(starts) - min(starts) >= 11 * settings.SHOPIFY_CALL_SPACING_SECONDS - 0.05
    assert other_elapsed < 1.0


def test_threads_of_one_process_share_the_limit():
    store = StoreFactory()
    starts: list[float] = []

    def call() -> None:
        try:
            wait_for_call_slot(store.pk)
            starts.append(time.time())
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert most_starts_in_one_second(starts) <= 2


def test_a_slot_is_never_reserved_inside_a_transaction():
    store = StoreFactory()

    with transaction.atomic(), pytest.raises(RuntimeError):
        wait_for_call_slot(store.pk)
