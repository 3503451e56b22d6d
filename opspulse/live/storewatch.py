"""Tell overviews and wallboards when a store's data changed.

The web process's listener (opspulse.live.listener) hands every store's live messages
to the store's hub, for its dashboards, and to the store's watch here: a watch turns
them into a "store changed" call to each of its subscribers, which re-read what they
show (a tile, a wallboard) at their own pace, and their alerts only when the messages
were about alerts. A watch renders nothing itself, so a
store that only an overview shows costs no dashboard renders. A lost transport
connection (`resync_all`) counts as a change of everything: messages may be missing.

The listener fans a store's messages out twice, to its hub and to its watch, on
purpose: a hub renders one set of panels shared by every dashboard of the store, while
each overview and wallboard shows its own stores, in its own timezone, and reads them
itself; sharing one mechanism would make every overview pay for dashboard renders.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

from opspulse.stores.models import Store


class Subscriber(Protocol):
    def store_changed(self, store_id: int, *, alerts: bool = False) -> None: ...


class StoreWatch:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.subscribers: set[Subscriber] = set()

    def changed(self, *, alerts: bool) -> None:
        for subscriber in list(self.subscribers):
            subscriber.store_changed(self.store.pk, alerts=alerts)


class StoreWatches:
    """This process's store watches, one per store that an overview or wallboard shows."""

    def __init__(self) -> None:
        self.watches: dict[str, StoreWatch] = {}

    def subscribe(self, store: Store, subscriber: Subscriber) -> None:
        key = str(store.public_id)
        watch = self.watches.get(key)
        if watch is None:
            watch = self.watches[key] = StoreWatch(store)
        watch.subscribers.add(subscriber)

    def unsubscribe(self, store: Store, subscriber: Subscriber) -> None:
        key = str(store.public_id)
        watch = self.watches.get(key)
        if watch is None:
            return
        watch.subscribers.discard(subscriber)
        if not watch.subscribers:
            del self.watches[key]

    def changed(self, store_public_id: str, *, alerts: bool = False) -> None:
        """The store's live messages arrived (`alerts`: some were about its alerts): its subscribers re-read."""
        watch = self.watches.get(str(store_public_id))
        if watch is not None:
            watch.changed(alerts=alerts)

    def resync_all(self) -> None:
        for watch in list(self.watches.values()):
            watch.changed(alerts=True)


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StoreWatches] = weakref.WeakKeyDictionary()


def store_watches() -> StoreWatches:
    """The store watches of the running event loop (a web process has one)."""
    loop = asyncio.get_running_loop()
    if loop not in _watches:
        _watches[loop] = StoreWatches()
    return _watches[loop]
