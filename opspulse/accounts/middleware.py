"""Session activity ("last active" on the sessions page), recorded at most once a minute.

allauth's UserSessionsMiddleware reads and updates the session's row in a transaction
on every request of a signed-in user: on a dashboard page that is four round trips and
a commit. This one records a session's activity on its first request in this process
and then at most once per TRACK_SECONDS, which is as precise as the page shows it
("last active 3 minutes ago").

It runs in the server's event loop as well as in a thread, so that the web process
hands a request to a thread once, for its view, rather than at every middleware that
can only run in one (each hand-over is a thread switch).
"""

from __future__ import annotations

import time

from allauth.usersessions.internal import usersessionkit
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest

TRACK_SECONDS = 60.0
# Sessions remembered per process; past this, those not seen for TRACK_SECONDS are forgotten.
REMEMBERED_SESSIONS = 10_000


class SessionActivityMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.tracked_at: dict[str, float] = {}
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._call_async(request)
        if self._due(request):
            self._track(request)
        return self.get_response(request)

    async def _call_async(self, request: HttpRequest):
        if self._due(request):
            await sync_to_async(self._track)(request)
        return await self.get_response(request)

    def _due(self, request: HttpRequest) -> bool:
        """Whether the request's session (if any) has gone untracked for TRACK_SECONDS.

        Reads the session's key from its cookie only: loading the session or the user
        here would read the database on the event loop.
        """
        session = getattr(request, "session", None)
        key = getattr(session, "session_key", None)
        return bool(key) and time.monotonic() - self.tracked_at.get(key, float("-inf")) >= TRACK_SECONDS

    def _track(self, request: HttpRequest) -> None:
        # A session of nobody signed in is remembered too: signing in gives it a new key.
        key = request.session.session_key
        usersessionkit.track_activity(request, user=getattr(request, "user", None), session=request.session)
        now = time.monotonic()
        if len(self.tracked_at) >= REMEMBERED_SESSIONS:
            self.tracked_at = {k: at for k, at in self.tracked_at.items() if now - at < TRACK_SECONDS}
        self.tracked_at[key] = now
