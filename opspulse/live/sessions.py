"""Close a signed-out session's dashboards.

The socket's user is resolved once, at connect, and stays signed in after an HTTP
logout (channels #1324), so every dashboard also joins a group named after its session.
With the in-memory layer this reaches the sockets of the current process only; the
consumer's periodic re-check of the session covers the others.
"""

from __future__ import annotations

import hashlib

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

FORCE_CLOSE_EVENT_TYPE = "live.force_close"


def session_group_name(session_key: str) -> str:
    # Hashed: the session key is a credential and group names can end up in Redis keys.
    return "session_live." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def close_session_sockets(session_key: str) -> None:
    layer = get_channel_layer()
    if layer is not None and session_key:
        async_to_sync(layer.group_send)(session_group_name(session_key), {"type": FORCE_CLOSE_EVENT_TYPE})
