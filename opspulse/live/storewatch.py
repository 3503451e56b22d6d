"""Tell overviews and wallboards when a store's data changed, from the store's hub.

The hub of a store (opspulse.live.hub) already receives the store's live messages in
this process, coalesces them and re-reads what they mark. A StoreWatch joins that hub
as one more dashboard: whatever the hub hands its dashboards, the watch turns into a
"store changed" call to each of its subscribers, which re-read what they show (a tile,
a wallboard) at their own pace. A lost transport connection (`resync`) counts as a
change: messages may be missing.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

from opspulse.live.hub import hubs
from opspulse.stores.models import Store


class Subscriber(Protocol):
    def store_changed(self, store_id: int) -> None: ...


class StoreWatch:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.subscribers: set[Subscriber] = set()

    async def deliver(self, rendered: dict[str, str], rows: str = "") -> None:
        self._changed()

    def resync(self) -> None:
        self._changed()

    def _changed(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.store_changed(self.store.pk)


class StoreWatches:
    """This process's store watches, one per store that an overview or wallboard shows."""

    def __init__(self) -> None:
        self.watches: dict[int, StoreWatch] = {}

    def subscribe(self, store: Store, subscriber: Subscriber) -> None:
        watch = self.watches.get(store.pk)
        if watch is None:
            watch = self.watches[store.pk] = StoreWatch(store)
            hubs().join(store, watch)
        watch.subscribers.add(subscriber)

    def unsubscribe(self, store: Store, subscriber: Subscriber) -> None:
        watch = self.watches.get(store.pk)
        if watch is None:
            return
        watch.subscribers.discard(subscriber)
        if not watch.subscribers:
            hubs().leave(store, watch)
            del self.watches[store.pk]


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StoreWatches] = weakref.WeakKeyDictionary()


def store_watches() -> StoreWatches:
    """The store watches of the running event loop (a web process has one)."""
    loop = asyncio.get_running_loop()
    if loop not in _watches:
        _watches[loop] = StoreWatches()
    return _watches[loop]
