"""Which sessions are still signed in, for many sessions at once.

Open dashboards re-check their session periodically. One query for all the sessions of
a web process replaces a session load and a user load per dashboard; the checks are
those of `django.contrib.auth.get_user` (session present and unexpired, a configured
backend, an active user, the session's password hash), without its side effects.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone
from django.utils.crypto import constant_time_compare


def signed_in_users(session_keys: Iterable[str]) -> dict[str, Any]:
    """Map each of `session_keys` that is still signed in to its user's primary key."""
    sessions = _session_data(set(session_keys))
    user_model = get_user_model()
    wanted: dict[str, Any] = {}
    for key, data in sessions.items():
        if data.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
            continue
        try:
            wanted[key] = user_model._meta.pk.to_python(data[SESSION_KEY])
        except (KeyError, ValueError, TypeError):
            continue
    users = {user.pk: user for user in user_model._default_manager.filter(pk__in=set(wanted.values()))}
    signed_in = {}
    for key, user_id in wanted.items():
        user = users.get(user_id)
        if user is None or not getattr(user, "is_active", True):
            continue
        session_hash = sessions[key].get(HASH_SESSION_KEY)
        if session_hash and (
            constant_time_compare(session_hash, user.get_session_auth_hash())
            or any(constant_time_compare(session_hash, old) for old in user.get_session_auth_fallback_hash())
        ):
            signed_in[key] = user_id
    return signed_in


def _session_data(keys: set[str]) -> dict[str, dict[str, Any]]:
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if issubclass(store_class, DatabaseSessionStore):
        rows = store_class.get_model_class().objects.filter(
            session_key__in=keys, expire_date__gt=timezone.now()
        ).values_list("session_key", "session_data")
        return {key: store_class().decode(data) for key, data in rows}
    # Other engines: one load per session.
    return {key: data for key in keys if (data := store_class(key).load())}
