"""Many dashboard WebSockets in one process, for bench/e2e.py and bench/connections.py.

Reads its job (JSON) from the file named on the command line: the server's port and,
per socket, the store's public id and a session cookie. Sockets are opened at the
given pace with the headers a browser sends (Cookie, Origin; permessage-deflate
offered, as browsers do); a socket counts as open once its first frame (the full
render) has arrived. For every socket the process notes when an order number
(`data-order-number="#N"`, or set by a patch) first appears in a frame, and counts
frames and bytes, both as received on the wire (compressed) and as payload.

One-shot mode (bench/e2e.py; the job lists "sockets"): open them all, print
"READY <open> <failed>", then on "STOP <from> <to>" (monotonic times) on stdin write
the results, counting frames and bytes within that window, to the job's output file
and exit.

Step mode (bench/connections.py; the job has "mode": "steps" and no sockets, and
"compression": false to offer no permessage-deflate): commands on stdin, one reply
line each on stdout:

    OPEN <job.json>            open the sockets listed there at the given pace
                               -> "OPENED <newly open> <newly failed> <open in total>"
    REPORT <from> <to> <out>   write every socket's results for that window to <out>,
                               then forget its frames and order numbers -> "REPORTED <n>"
    QUIT                       close every socket and exit
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

# An order's row, in a whole panel or row (`data-order-number="#N"`) or in a patch that
# brings it into a feed whose rows kept their structure (`"data-order-number","#N"`).
ORDER_NUMBER = re.compile(r'data-order-number(?:="|",")(#\d+)"')
HEARTBEAT = "<!-- heartbeat -->"


class Socket:
    def __init__(self, index: int, store: int) -> None:
        self.index = index
        self.store = store
        self.connected_at = 0.0
        self.first_frame_at = 0.0
        self.first_frame_bytes = 0
        self.closed_at = 0.0
        self.wire_bytes = 0
        # Wire bytes already accounted for by an earlier report (step mode).
        self.wire_base = 0
        self.seen: dict[str, float] = {}
        self.frames: list[tuple[float, int, int]] = []  # (time, payload bytes, wire bytes so far)
        self.closed: str | None = None

    @property
    def is_open(self) -> bool:
        return bool(self.first_frame_at) and self.closed is None


def counting_connection(sock: Socket) -> type[ClientConnection]:
    class Counting(ClientConnection):
        def data_received(self, data: bytes) -> None:
            sock.wire_bytes += len(data)
            super().data_received(data)

    return Counting


async def run_socket(sock: Socket, url: str, origin: str, cookie: str, ready: asyncio.Event, measuring: list[bool],
                     compression: str | None = "deflate") -> None:
    try:
        async with connect(
            url,
            origin=origin,
            additional_headers={"Cookie": f"sessionid={cookie}"},
            proxy=None,
            compression=compression,
            open_timeout=60,
            # Browsers never ping; the server's pings are still answered.
            ping_interval=None,
            max_size=None,
            max_queue=None,
            create_connection=counting_connection(sock),
        ) as ws:
            sock.connected_at = time.monotonic()
            async for frame in ws:
                now = time.monotonic()
                text = frame if isinstance(frame, str) else frame.decode()
                if not sock.first_frame_at:
                    sock.first_frame_at = now
                    sock.first_frame_bytes = len(text.encode())
                    ready.set()
                sock.frames.append((now, len(text.encode()), sock.wire_bytes))
                if measuring[0] and text != HEARTBEAT:
                    for number in ORDER_NUMBER.findall(text):
                        sock.seen.setdefault(number, now)
    except Exception as exc:  # noqa: BLE001 - reported, never fatal for the other sockets
        sock.closed = f"{type(exc).__name__}: {exc}"[:200]
        sock.closed_at = time.monotonic()
        ready.set()
        return
    sock.closed = "closed by server"
    sock.closed_at = time.monotonic()
    ready.set()


class Dashboards:
    """The sockets of this process and their bookkeeping."""

    def __init__(self, port: int, *, compression: bool = True) -> None:
        self.url_base = f"ws://127.0.0.1:{port}"
        # Browsers offer permessage-deflate; without it the server keeps no compressor.
        self.compression = "deflate" if compression else None
        self.origin = f"http://127.0.0.1:{port}"
        self.sockets: list[Socket] = []
        self.tasks: list[asyncio.Task] = []
        self.measuring = [False]

    async def open(self, specs: list[dict[str, Any]], connect_rate: float, ready_timeout: float) -> list[Socket]:
        """Open the sockets at `connect_rate` per second; wait for their first frames."""
        added: list[Socket] = []
        readies = []
        interval = 1.0 / connect_rate
        started = time.monotonic()
        for n, spec in enumerate(specs):
            delay = started + n * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sock = Socket(spec["index"], spec["store"])
            ready = asyncio.Event()
            added.append(sock)
            readies.append(ready)
            self.tasks.append(asyncio.create_task(run_socket(
                sock, f"{self.url_base}/ws/stores/{spec['public_id']}/", self.origin, spec["cookie"], ready,
                self.measuring, self.compression)))
        self.sockets.extend(added)
        try:
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=ready_timeout)
        except TimeoutError:
            pass
        return added

    def report(self, t0: float, t1: float, *, forget: bool) -> list[dict[str, Any]]:
        """Each socket's frames, bytes and first sightings of order numbers within [t0, t1]."""
        result = []
        for sock in self.sockets:
            in_window = [(t, size, wire) for t, size, wire in sock.frames if t0 <= t <= t1]
            before = [wire for t, _, wire in sock.frames if t < t0]
            wire_at_t0 = before[-1] if before else sock.wire_base
            wire_in_window = (in_window[-1][2] - wire_at_t0) if in_window else 0
            result.append({
                "index": sock.index,
                "store": sock.store,
                "connect_s": round(sock.first_frame_at - sock.connected_at, 4) if sock.first_frame_at else None,
                "opened_at": sock.first_frame_at or None,
                "first_frame_bytes": sock.first_frame_bytes,
                "frames": len(in_window),
                "payload_bytes": sum(size for _, size, _ in in_window),
                "wire_bytes": wire_in_window,
                "seen": {number: t for number, t in sock.seen.items() if t >= t0} if forget else sock.seen,
                "closed": sock.closed,
                "closed_at": sock.closed_at or None,
            })
            if forget:
                sock.wire_base = sock.frames[-1][2] if sock.frames else sock.wire_base
                sock.frames.clear()
                sock.seen.clear()
        return result

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), timeout=30)


def raise_open_files_limit() -> None:
    """Allow as many descriptors as the hard limit does: one per socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def one_shot(job: dict[str, Any]) -> None:
    dashboards = Dashboards(job["port"])
    await dashboards.open(job["sockets"], job["connect_rate"], job.get("ready_timeout", 300))
    dashboards.measuring[0] = True
    open_count = sum(1 for s in dashboards.sockets if s.is_open)
    print(f"READY {open_count} {len(dashboards.sockets) - open_count}", flush=True)

    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    _, window_from, window_to = line.split()
    result = dashboards.report(float(window_from), float(window_to), forget=False)
    Path(job["out"]).write_text(json.dumps(result))
    for task in dashboards.tasks:
        task.cancel()
    await asyncio.gather(*dashboards.tasks, return_exceptions=True)


async def steps(job: dict[str, Any]) -> None:
    dashboards = Dashboards(job["port"], compression=job.get("compression", True))
    # Order numbers are noted from the start; each report keeps those of its window only.
    dashboards.measuring[0] = True
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        words = line.split()
        if not words or words[0] == "QUIT":
            break
        if words[0] == "OPEN":
            spec = json.loads(Path(words[1]).read_text())
            added = await dashboards.open(spec["sockets"], spec["connect_rate"], spec.get("ready_timeout", 300))
            opened = sum(1 for s in added if s.is_open)
            total = sum(1 for s in dashboards.sockets if s.is_open)
            print(f"OPENED {opened} {len(added) - opened} {total}", flush=True)
        elif words[0] == "REPORT":
            result = dashboards.report(float(words[1]), float(words[2]), forget=True)
            Path(words[3]).write_text(json.dumps(result))
            print(f"REPORTED {len(result)}", flush=True)
        else:
            print(f"ERROR unknown command {words[0]!r}", flush=True)
    try:
        await dashboards.close()
    except TimeoutError:
        pass


async def main() -> None:
    raise_open_files_limit()
    job = json.loads(Path(sys.argv[1]).read_text())
    if job.get("mode") == "steps":
        await steps(job)
    else:
        await one_shot(job)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
