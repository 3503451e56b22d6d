"""Close a signed-out session's dashboards, and re-check a user's, in every web process.

The socket's user is resolved once, at connect, and stays signed in after an HTTP
logout (channels #1324). With the PostgreSQL transport a sign-out is a NOTIFY that
every web process's listener hands to its access watch (opspulse.live.access); with
the Redis transport every dashboard joins a group named after its session. The
periodic re-check of each dashboard's session is the backstop for both.

A team change (a member removed, leaving, a role changed, an account deleted) asks
every process to re-check that user's dashboards at once, the same two ways: a NOTIFY,
or a group per user that each of the user's dashboards joins.
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
RECHECK_EVENT_TYPE = "live.recheck"


def session_group_name(session_key: str) -> str:
    return "session_live." + session_hash(session_key)


def session_hash(session_key: str) -> str:
    # Hashed: the session key is a credential, and group names and NOTIFY payloads are not secret.
    return hashlib.sha256(session_key.encode()).hexdigest()[:40]


def user_group_name(user_id: int) -> str:
    # The primary key, unlike a store's, never reaches a page: group names stay in Redis.
    return f"user_live.{int(user_id)}"


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


def recheck_user_access(user_id: int) -> None:
    """Make every web process re-check the open dashboards of `user_id` now.

    Those whose store's account the user is no longer a member of close with 4403.
    Call it after the change committed (the re-check reads the database).
    """
    if settings.LIVE_TRANSPORT == "postgres":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, json.dumps({"recheck_user": int(user_id)})])
        return
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(user_group_name(user_id), {"type": RECHECK_EVENT_TYPE})
