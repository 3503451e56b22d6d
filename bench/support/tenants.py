"""Bench tenants: the accounts, users and stores a benchmark run creates, and their cleanup.

They are named `opspulse-bench ...`; a run deletes its own at the end, and a later run
deletes those of a run that died without cleaning up.

Django, its models and the packages some benchmarks never need are imported inside the
functions that use them: a benchmark imports this module before django.setup().
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from support.database import drop_scratch_database, retry_db
from support.runtime import alive, log

ACCOUNT_PREFIX = "opspulse-bench "
EMAIL_DOMAIN = "bench.opspulse.localhost"


@dataclass
class Tenant:
    """Accounts, users and stores of one benchmark run, and their cleanup."""

    script: str
    run: int = field(default_factory=lambda: int(time.time() * 1000) % 10**9)
    account_ids: list[int] = field(default_factory=list)
    user_ids: list[int] = field(default_factory=list)
    stores: list[Any] = field(default_factory=list)
    secrets: dict[int, str] = field(default_factory=dict)
    session_keys: list[str] = field(default_factory=list)

    @property
    def account_name(self) -> str:
        return f"{ACCOUNT_PREFIX}{self.script} pid={os.getpid()} run={self.run}"

    @property
    def store_ids(self) -> list[int]:
        return [store.pk for store in self.stores]

    def create(self, *, stores: int, stores_per_account: int, timezone: str = "UTC", currency: str = "USD") -> None:
        """Create `stores` stores, alternately Shopify and WooCommerce, each account with one owner."""
        from django.db import transaction

        from opspulse.accounts.models import Account, Membership, Role, User
        from opspulse.stores.models import Integration, Store

        with transaction.atomic():
            for index in range(stores):
                if index % stores_per_account == 0:
                    number = index // stores_per_account
                    account = Account.objects.create(name=self.account_name)
                    user = User.objects.create_user(f"bench{self.run}-{number}@{EMAIL_DOMAIN}", None)
                    Membership.objects.create(account=account, user=user, role=Role.OWNER)
                    self.account_ids.append(account.pk)
                    self.user_ids.append(user.pk)
                shopify = index % 2 == 0
                store = Store.objects.create(
                    account=account,
                    name=f"Bench {index}",
                    platform="shopify" if shopify else "woocommerce",
                    domain=f"bench{self.run}-{index}." + ("myshopify.com" if shopify else "example.com"),
                    timezone=timezone,
                    currency=currency,
                )
                secret = uuid.uuid4().hex
                integration = Integration(store=store, type=store.platform)
                integration.webhook_secret = secret
                integration.save()
                self.stores.append(store)
                self.secrets[store.pk] = secret

    def login_cookie(self, user_id: int) -> str:
        """A session cookie for the user, made the way a sign-in makes one."""
        from django.test import Client

        from opspulse.accounts.models import User

        client = Client()
        client.force_login(User.objects.get(pk=user_id))
        key = client.cookies["sessionid"].value
        self.session_keys.append(key)
        return key

    def targets(self) -> list[Any]:
        from opspulse.sim.demo import demo_catalog
        from opspulse.sim.simulator import StoreTarget

        return [
            StoreTarget(
                platform=store.platform,
                domain=store.domain,
                webhook_secret=self.secrets[store.pk],
                timezone=store.timezone,
                currency=store.currency,
                catalog=tuple(demo_catalog(store)),
                ingest_token=store.ingest_token,
                name=store.name,
            )
            for store in self.stores
        ]

    def delete_deliveries(self, extra_where: str = "", params: Sequence[Any] = ()) -> int:
        from django.db import connection

        def run() -> int:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM ingest_webhook_delivery WHERE store_id = ANY(%s) {extra_where}",
                    [self.store_ids, *params],
                )
                return cursor.rowcount

        return retry_db(run, what="deleting bench deliveries")

    def delete_jobs(self) -> None:
        from django.db import connection

        from opspulse.ingest.queue import DRAIN_TASK

        # Drain jobs serve lanes shared with every other store; one that finds nothing
        # ends at once, so only jobs waiting for no delivery at all are removed.
        def run() -> None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM procrastinate_jobs WHERE task_name = %s AND status = 'todo'"
                    " AND NOT EXISTS (SELECT 1 FROM ingest_webhook_delivery WHERE status = 'pending')",
                    [DRAIN_TASK],
                )

        retry_db(run, what="deleting bench jobs")

    def cleanup(self) -> None:
        if not self.account_ids and not self.user_ids:
            return
        log(f"deleting bench data of run {self.run} ({len(self.stores)} stores)")
        _delete_tenant(self.account_ids, self.user_ids, self.store_ids, self.session_keys)
        self.account_ids, self.user_ids, self.stores, self.session_keys = [], [], [], []


def _delete_tenant(account_ids: list[int], user_ids: list[int], store_ids: list[int], session_keys: list[str]) -> None:
    from django.contrib.sessions.models import Session
    from django.db import connection, transaction

    from opspulse.accounts.models import Account, User

    from opspulse.ingest.queue import DRAIN_TASK

    def running_jobs() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status = 'doing'",
                           [DRAIN_TASK])
            return cursor.fetchone()[0]

    # A drain job still running (another worker's) would trip over the deletions.
    deadline = time.monotonic() + 30
    while retry_db(running_jobs, what="looking for running jobs") and time.monotonic() < deadline:
        time.sleep(0.5)

    def run() -> None:
        with connection.cursor() as cursor:
            # Deliveries are by far the largest part: delete them in one statement first.
            cursor.execute("DELETE FROM ingest_webhook_delivery WHERE store_id = ANY(%s)", [store_ids])
            # A drain job left `doing` by a stopped bench worker would hold its lane.
            cursor.execute(
                "DELETE FROM procrastinate_jobs j WHERE task_name = %s AND status = 'doing' AND NOT EXISTS"
                " (SELECT 1 FROM procrastinate_workers w WHERE w.id = j.worker_id"
                "  AND w.last_heartbeat > now() - interval '30 seconds')", [DRAIN_TASK]
            )
        with transaction.atomic():
            Account.objects.filter(pk__in=account_ids).delete()
            User.objects.filter(pk__in=user_ids).delete()
            Session.objects.filter(session_key__in=session_keys).delete()

    retry_db(run, what="deleting bench data")


def delete_stale_tenants() -> None:
    """Delete bench data left by runs whose process is gone (killed before cleaning up)."""
    from opspulse.accounts.models import Account, User
    from opspulse.stores.models import Store

    pattern = re.compile(r"pid=(\d+) run=(\d+)")
    stale: dict[int, list[int]] = {}
    for account in Account.objects.filter(name__startswith=ACCOUNT_PREFIX):
        match = pattern.search(account.name)
        if match is None:
            continue
        pid, run = int(match[1]), int(match[2])
        if pid != os.getpid() and alive(pid):
            continue
        stale.setdefault(run, []).append(account.pk)
    for run, account_ids in stale.items():
        store_ids = list(Store.objects.filter(account_id__in=account_ids).values_list("pk", flat=True))
        user_ids = list(User.objects.filter(email__startswith=f"bench{run}-", email__endswith=f"@{EMAIL_DOMAIN}").values_list("pk", flat=True))
        log(f"deleting bench data left by an earlier run ({run}: {len(store_ids)} stores)")
        _delete_tenant(account_ids, user_ids, store_ids, [])


@contextlib.contextmanager
def run_tenant(script: str, *, scratch: str | None) -> Iterator[Tenant]:
    """A tenant for this run of `script`, once those of dead runs are deleted.

    At the end it is deleted, and the scratch database `scratch` (its admin URL), if any, dropped.
    """
    delete_stale_tenants()
    tenant = Tenant(script=script)
    try:
        yield tenant
    finally:
        tenant.cleanup()
        if scratch:
            drop_scratch_database(scratch)
