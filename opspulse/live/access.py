"""Heartbeats and access re-checks for every open dashboard of a web process.

The socket's user is resolved once, at connect. Each dashboard therefore gets a
heartbeat and a re-check of its session and membership once per period, and is closed
(4401 signed out, 4403 no longer a member) when either has ended. The dashboards of a
process are spread over one slot per second of the period, and each second one query
set checks that slot's dashboards together, instead of a task and a few queries per
dashboard. A team change re-checks one user's dashboards at once (`recheck_user`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections.abc import Sequence
from typing import Protocol

from channels.db import database_sync_to_async

from opspulse.accounts.models import Membership
from opspulse.accounts.sessions import signed_in_users
from opspulse.lib.broadcast import session_hash
from opspulse.live.share import LINK_KEY_PREFIX, active_link_stores
from opspulse.stores.selectors import member_store_pairs

logger = logging.getLogger("opspulse.live")

SIGNED_OUT = 4401
FORBIDDEN = 4403
LINK_REVOKED = 4404


class Watched(Protocol):
    """An open socket. `session_key` is its session's, or its share link's key; `user_id`
    is None for a share link, whose socket may name the link's maker as `creator_id`. It
    shows a store (`store_id`) or, for an overview, every store of an account
    (`account_id`, with `store_id` None)."""

    session_key: str
    user_id: int | None
    store_id: int | None

    async def heartbeat(self) -> None: ...

    async def close(self, code: int | None = None, reason: str | None = None) -> None: ...


def _close_codes(entries: Sequence[tuple[str, int | None, int | None, int | None]]) -> list[int | None]:
    """For each (session or link key, user id, store id, account id), the close code if its access has ended."""
    links = active_link_stores(key.removeprefix(LINK_KEY_PREFIX) for key, user_id, _, _ in entries if user_id is None)
    signed = [entry for entry in entries if entry[1] is not None]
    signed_in = signed_in_users({key for key, _, _, _ in signed})
    members = member_store_pairs({(user_id, store_id) for _, user_id, store_id, _ in signed if store_id is not None})
    account_members = member_account_pairs(
        {(user_id, account_id) for _, user_id, store_id, account_id in signed if store_id is None}
    )
    codes: list[int | None] = []
    for key, user_id, store_id, account_id in entries:
        if user_id is None:
            link_store = links.get(key.removeprefix(LINK_KEY_PREFIX)) if key.startswith(LINK_KEY_PREFIX) else None
            codes.append(None if link_store is not None and link_store == store_id else LINK_REVOKED)
        elif signed_in.get(key) != user_id:
            codes.append(SIGNED_OUT)
        elif store_id is not None and (user_id, store_id) not in members:
            codes.append(FORBIDDEN)
        elif store_id is None and (user_id, account_id) not in account_members:
            codes.append(FORBIDDEN)
        else:
            codes.append(None)
    return codes


def member_account_pairs(pairs: set[tuple[int, int | None]]) -> set[tuple[int, int]]:
    """Of the (user id, account id) pairs, those where the user is a member of the account."""
    if not pairs:
        return set()
    found = Membership.objects.filter(
        user_id__in={user_id for user_id, _ in pairs}, account_id__in={account_id for _, account_id in pairs}
    ).values_list("user_id", "account_id")
    return set(found) & pairs


close_codes = database_sync_to_async(_close_codes)


class AccessWatch:
    period_seconds = 30.0
    slots = 30

    def __init__(self) -> None:
        self.slices: list[set[Watched]] = [set() for _ in range(self.slots)]
        self.slot_of: dict[Watched, int] = {}
        self.by_session: dict[str, set[Watched]] = {}
        self.by_user: dict[int, set[Watched]] = {}
        self.closing: set[asyncio.Task] = set()
        self.turn = 0
        self.task: asyncio.Task | None = None

    def add(self, dashboard: Watched) -> None:
        # First checked half to a whole period after it joins: a freshly checked socket
        # needs no check at once, and dashboards that join together (a web process
        # restarted) still spread over half the slots.
        slot = (self.turn + random.randrange(self.slots // 2, self.slots)) % self.slots
        self.slices[slot].add(dashboard)
        self.slot_of[dashboard] = slot
        self.by_session.setdefault(session_hash(dashboard.session_key), set()).add(dashboard)
        user_id = _concerned_user(dashboard)
        if user_id is not None:
            self.by_user.setdefault(user_id, set()).add(dashboard)
        if self.task is None:
            self.task = asyncio.create_task(self._run())

    def remove(self, dashboard: Watched) -> None:
        slot = self.slot_of.pop(dashboard, None)
        if slot is not None:
            self.slices[slot].discard(dashboard)
            key = session_hash(dashboard.session_key)
            self.by_session.get(key, set()).discard(dashboard)
            if not self.by_session.get(key, True):
                del self.by_session[key]
            user_id = _concerned_user(dashboard)
            self.by_user.get(user_id, set()).discard(dashboard)
            if not self.by_user.get(user_id, True):
                del self.by_user[user_id]

    def sign_out(self, hashed_session_key: str) -> None:
        """Close the dashboards of a session that signed out (see opspulse.lib.broadcast)."""
        for dashboard in list(self.by_session.get(hashed_session_key, ())):
            self.remove(dashboard)
            # A share link's "sign-out" is its revocation.
            code = SIGNED_OUT if dashboard.user_id is not None else LINK_REVOKED
            closing = asyncio.create_task(dashboard.close(code=code))
            self.closing.add(closing)
            closing.add_done_callback(self.closing.discard)

    def recheck_user(self, user_id: int) -> None:
        """Re-check the session and membership of the user's dashboards (and of the
        wallboards open through the user's share links) now, not at their slot."""
        self.recheck(list(self.by_user.get(user_id, ())))

    def recheck(self, dashboards: list[Watched]) -> None:
        if not dashboards:
            return
        checking = asyncio.create_task(self._close_ended(dashboards))
        self.closing.add(checking)
        checking.add_done_callback(self.closing.discard)

    async def _run(self) -> None:
        try:
            while self.slot_of:
                await asyncio.sleep(self.period_seconds / self.slots)
                dashboards = list(self.slices[self.turn])
                self.turn = (self.turn + 1) % self.slots
                if dashboards:
                    await self._check(dashboards)
        finally:
            self.task = None

    async def _check(self, dashboards: list[Watched]) -> None:
        for dashboard in dashboards:
            try:
                await dashboard.heartbeat()
            except Exception as exc:
                # The socket went away; its disconnect removes it.
                logger.debug("live: could not send a heartbeat: %r", exc)
        await self._close_ended(dashboards)

    async def _close_ended(self, dashboards: list[Watched]) -> None:
        try:
            codes = await close_codes(
                [(d.session_key, d.user_id, d.store_id, getattr(d, "account_id", None)) for d in dashboards]
            )
        except Exception:
            logger.warning("live access re-check failed; trying again next period", exc_info=True)
            return
        for dashboard, code in zip(dashboards, codes, strict=True):
            if code is not None and dashboard in self.slot_of:
                self.remove(dashboard)
                await dashboard.close(code=code)


def _concerned_user(dashboard: Watched) -> int | None:
    """Whose team changes may end the socket: its user's, or its share link's creator's."""
    if dashboard.user_id is not None:
        return dashboard.user_id
    return getattr(dashboard, "creator_id", None)


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AccessWatch] = weakref.WeakKeyDictionary()


def watch() -> AccessWatch:
    """The access watch of the running event loop (a web process has one)."""
    loop = asyncio.get_running_loop()
    if loop not in _watches:
        _watches[loop] = AccessWatch()
    return _watches[loop]
