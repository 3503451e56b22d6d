"""The worker's drainer: one long-lived loop that takes deliveries as they arrive.

A drain job per lane and burst costs a job's whole life (deferring it, fetching it,
its events, ending it) for each one or two deliveries at ordinary rates, and a new
delivery waits for the worker's poll whenever the lane's next job was blocked behind
the running one. The drainer instead keeps one connection on which it owns lanes
(the session lock `queue.drainer_lock_key`) and LISTENs on their channels. While it
waits it also holds each lane's idle lock (`queue.idle_lock_key`): ingest, seeing it,
notifies, and the drainer, waiting on the socket, wakes at once. It lets the idle locks
go as a batch starts, so a burst costs one NOTIFY, not one per webhook (each NOTIFY
wakes every listening session of the database and makes commits take turns).

Each turn takes one batch across all its lanes (an equal share per store,
opspulse.ingest.actions). A turn that may have left deliveries behind is followed by
another at once. Otherwise the drainer goes idle: it takes the idle locks, which waits
for the ingests that saw it busy, then looks for due deliveries once more, and waits
for a notification only if there are none. Under load batches grow by themselves: a
batch takes what arrived while the one before it ran.

Nothing depends on a notification arriving: every DRAIN_IDLE_POLL_SECONDS an idle
drainer reads its lanes anyway, and tries to take the lanes it does not own (another
worker's, or a drain job's while it runs). When the drainer stops it hands its lanes
back: once the ingests in flight have ended, it releases each lane and defers a
drain job for any delivery still pending. When its connection dies, PostgreSQL frees
the locks; ingest then defers drain jobs, and the sweep (opspulse.ingest.tasks)
defers one for any lane whose deliveries have waited too long.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from opspulse.ingest import actions, queue
from opspulse.lib.db import unpooled_connection_for_this_thread

logger = logging.getLogger("opspulse.ingest")

PENDING_IN_LANE = (
    "SELECT EXISTS (SELECT 1 FROM ingest_webhook_delivery WHERE status = 'pending' AND store_id %% %s = %s)"
)


# An idle drainer looks at least this often whether it was asked to stop, so that a
# worker stops within about this long of SIGTERM, not after a whole idle poll.
STOP_CHECK_SECONDS = 0.2


class Drainer:
    """Drain the lanes this process can own until `stop()`; run it in a thread of its own."""

    max_backoff_seconds = 10.0

    def __init__(self, lanes: list[int] | None = None) -> None:
        self.lanes = sorted(lanes if lanes is not None else range(settings.DRAIN_LANES))
        self.owned: list[int] = []
        # The owned lanes whose idle lock this drainer holds (queue.idle_lock_key).
        self.idle: list[int] = []
        self.stopping = threading.Event()
        self.retry_at: float | None = None
        self.next_claim_at = 0.0
        self.handled = 0
        self.thread: threading.Thread | None = None

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        """Own, drain, and start again after a lost connection, until stopped."""
        # The session holds the lanes' locks and LISTENs: it must never go back to the
        # pool, where another thread would get it.
        unpooled_connection_for_this_thread()
        delay = 0.5
        try:
            while not self.stopping.is_set():
                try:
                    self._serve()
                    delay = 0.5
                except DatabaseError as exc:
                    logger.warning("drainer: database unavailable (%s); trying again", exc)
                except Exception:
                    logger.exception("drainer: unexpected error; starting again")
                self._drop_connection()
                self.stopping.wait(delay * random.uniform(1.0, 1.5))
                delay = min(delay * 2, self.max_backoff_seconds)
        finally:
            self._drop_connection()

    def _serve(self) -> None:
        connection.ensure_connection()
        self.owned, self.idle = [], []
        self.retry_at = None
        more = True  # a drainer that takes over drains what waits
        idle_poll = settings.DRAIN_IDLE_POLL_SECONDS
        # A look that said deliveries were due, and the batch after it found none (they
        # went another way): the next look is not trusted, or the two would loop.
        promised = broken_promise = False
        try:
            while not self.stopping.is_set():
                if not more and self.owned:
                    # Ingest notifies from now on; what arrived while this drainer was
                    # busy (and not notified) is looked for once those ingests ended.
                    more = promised = self._go_idle() and not broken_promise
                if not more:
                    timeout = idle_poll
                    if self.retry_at is not None:
                        timeout = min(timeout, max(self.retry_at - time.monotonic(), 0.0))
                    if not self._wait(timeout):
                        self._due_retries()
                    if self.stopping.is_set():
                        break
                if len(self.owned) < len(self.lanes) and time.monotonic() >= self.next_claim_at and self._claim():
                    more = True  # a lane just taken over may have deliveries waiting
                if not self.owned:
                    more = False
                    continue
                idle, self.idle = self.idle, []
                batch = actions.drain_batch(lanes=self.owned, releasing_idle=idle)
                self.handled += batch.taken
                if batch.retry_in is not None:
                    self._retry_in(batch.retry_in)
                broken_promise, promised = promised and not batch.taken, False
                more = batch.more
        finally:
            self._hand_back()

    def _go_idle(self) -> bool:
        """Hold the owned lanes' idle locks, once the ingests that saw this drainer busy
        have ended; return whether their lanes hold deliveries due now."""
        taking = [lane for lane in self.owned if lane not in self.idle]
        if taking:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_advisory_lock(key)) FROM unnest(%s::bigint[]) AS key",
                    [[queue.idle_lock_key(lane) for lane in taking]],
                )
            self.idle.extend(taking)
        self._heard()  # notifications so far are about deliveries the look below sees
        return actions.has_due_deliveries(lanes=self.owned)

    def _wait(self, timeout: float) -> bool:
        """Wait up to `timeout` for a notification, or until stopped; whether one came."""
        raw = connection.connection
        deadline = time.monotonic() + timeout
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for _ in raw.notifies(timeout=min(left, STOP_CHECK_SECONDS), stop_after=1):
                return True
        return False

    def _heard(self) -> bool:
        """Take the notifications received so far; whether there were any."""
        heard = False
        for _ in connection.connection.notifies(timeout=0):
            heard = True
        return heard

    def _claim(self) -> bool:
        """Take the lanes no drainer owns and no drain job runs; whether any was taken."""
        self.next_claim_at = time.monotonic() + settings.DRAIN_IDLE_POLL_SECONDS
        claimed = False
        with connection.cursor() as cursor:
            for lane in self.lanes:
                if lane in self.owned:
                    continue
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [queue.drainer_lock_key(lane)])
                if cursor.fetchone()[0]:
                    cursor.execute(f'LISTEN "{queue.drain_channel(lane)}"')
                    self.owned.append(lane)
                    claimed = True
        self.owned.sort()
        return claimed

    def _due_retries(self) -> None:
        if self.owned:
            self.retry_at = None
            retry_in = actions.next_retry_in(actions.LANES_SCOPE, actions.lanes_params(self.owned))
            if retry_in is not None:
                self._retry_in(retry_in)

    def _retry_in(self, seconds: float) -> None:
        due = time.monotonic() + max(seconds, 0.05)
        self.retry_at = due if self.retry_at is None else min(self.retry_at, due)

    def _hand_back(self) -> None:
        """Release every lane; defer a drain job for those with deliveries still pending."""
        owned, self.owned = self.owned, []
        idle, self.idle = self.idle, []
        for lane in owned:
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    if lane in idle:
                        cursor.execute("SELECT pg_advisory_unlock(%s)", [queue.idle_lock_key(lane)])
                    # Ingests in flight saw the lane owned and only notified: wait for
                    # them, so that the look below finds their deliveries.
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [queue.ingest_lock_key(lane)])
                    cursor.execute(f'UNLISTEN "{queue.drain_channel(lane)}"')
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [queue.drainer_lock_key(lane)])
                    cursor.execute(PENDING_IN_LANE, [settings.DRAIN_LANES, lane])
                    if cursor.fetchone()[0]:
                        queue.defer_drain(lane)
            except DatabaseError:
                # The connection is gone and the locks with it; ingest defers jobs again,
                # and the sweep defers one for what was left.
                return

    def _drop_connection(self) -> None:
        try:
            connection.close()
        except DatabaseError:
            pass


def start(lanes: list[int] | None = None) -> Drainer:
    """Start a drainer in a thread of its own (its `thread`)."""
    drainer = Drainer(lanes)
    drainer.thread = threading.Thread(target=drainer.run, name="drainer", daemon=True)
    drainer.thread.start()
    return drainer
