"""Deferring procrastinate jobs that may be waiting already."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from procrastinate.contrib.django import app
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import JobDeferrer


def defer_once(deferrer: JobDeferrer, **arguments: Any) -> bool:
    """Defer the job unless one with its queueing lock is waiting; return whether it was deferred.

    In a savepoint: a refused duplicate must not abort a surrounding transaction.
    """
    try:
        with transaction.atomic():
            deferrer.defer(**arguments)
    except AlreadyEnqueued:
        return False
    return True


def task_named(name: str, **options: Any) -> JobDeferrer:
    """Return a job of the task `name`, configured with `options`, without importing its module.

    Actions defer their app's jobs this way: tasks call actions, never the other way round.
    """
    return app.configure_task(name, **options)
