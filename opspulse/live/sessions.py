"""Close a signed-out session's dashboards, in every web process.

The socket's user is resolved once, at connect, and stays signed in after an HTTP
logout (channels #1324). With the PostgreSQL transport a sign-out is a NOTIFY that
every web process's listener hands to its access watch (opspulse.live.access); with
the Redis transport every dashboard joins a group named after its session. The
periodic re-check of each dashboard's session is the backstop for both.
"""

from __future__ import annotations

import hashlib
import json

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from opspulse.live.publish import NOTIFY_CHANNEL

FORCE_CLOSE_EVENT_TYPE = "live.force_close"


def session_group_name(session_key: str) -> str:
    return "session_live." + session_hash(session_key)


def session_hash(session_key: str) -> str:
    # Hashed: the session key is a credential, and group names and NOTIFY payloads are not secret.
    return hashlib.sha256(session_key.encode()).hexdigest()[:40]


def close_session_sockets(session_key: str) -> None:
    if not session_key:
        return
    if settings.LIVE_TRANSPORT == "postgres":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, json.dumps({"signed_out": session_hash(session_key)})]
            )
        return
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(session_group_name(session_key), {"type": FORCE_CLOSE_EVENT_TYPE})
