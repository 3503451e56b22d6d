"""Session activity ("last active" on the sessions page), recorded at most once a minute.

allauth's UserSessionsMiddleware reads and updates the session's row in a transaction
on every request of a signed-in user: on a dashboard page that is four round trips and
a commit. This one records a session's activity on its first request in this process
and then at most once per TRACK_SECONDS, which is as precise as the page shows it
("last active 3 minutes ago").
"""

from __future__ import annotations

import time

from allauth.usersessions.internal import usersessionkit
from django.http import HttpRequest

TRACK_SECONDS = 60.0
# Sessions remembered per process; past this, those not seen for TRACK_SECONDS are forgotten.
REMEMBERED_SESSIONS = 10_000


class SessionActivityMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.tracked_at: dict[str, float] = {}

    def __call__(self, request: HttpRequest):
        session = getattr(request, "session", None)
        key = session.session_key if session is not None else None
        if key:
            now = time.monotonic()
            if now - self.tracked_at.get(key, float("-inf")) >= TRACK_SECONDS:
                user = getattr(request, "user", None)
                usersessionkit.track_activity(request, user=user, session=session)
                if user is not None and user.is_authenticated:
                    self._remember(key, now)
        return self.get_response(request)

    def _remember(self, key: str, now: float) -> None:
        if len(self.tracked_at) >= REMEMBERED_SESSIONS:
            self.tracked_at = {k: at for k, at in self.tracked_at.items() if now - at < TRACK_SECONDS}
        self.tracked_at[key] = now
