"""Run the jobs of one procrastinate queue in the test's own process, on the real queue."""

from __future__ import annotations

from procrastinate.contrib.django import app

from opspulse.alerts.tasks import ALERTS_QUEUE


def run_queue_until_idle(queue: str) -> None:
    """Process every job of `queue` that is due, then return."""
    # As `manage.py procrastinate worker` does: workers use a psycopg connector.
    with app.replace_connector(app.connector.get_worker_connector()) as worker_app:
        worker_app.run_worker(queues=[queue], wait=False, install_signal_handlers=False, listen_notify=False)


def run_worker_until_idle() -> None:
    """Process every job of the ingest queue that is due."""
    run_queue_until_idle("ingest")


def run_alert_jobs() -> None:
    run_queue_until_idle(ALERTS_QUEUE)


def run_platform_jobs() -> None:
    """Run every due job of the platform queue.

    Periodic sweeps are not started: a test defers what it means to run.
    """
    with app.replace_connector(app.connector.get_worker_connector()) as worker_app:
        periodic_defaults = worker_app.periodic_defaults
        worker_app.periodic_defaults = {"max_delay": 0}  # no catching up on a sweep that is due
        try:
            worker_app.run_worker(queues=["shopify"], wait=False, install_signal_handlers=False, listen_notify=False)
        finally:
            worker_app.periodic_defaults = periodic_defaults
