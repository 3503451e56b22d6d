"""Many dashboard WebSockets in one process, for bench/e2e.py.

Reads its job (JSON) from the file named on the command line: the server's port and,
per socket, the store's public id and a session cookie. Opens the sockets at the given
pace with the headers a browser sends (Cookie, Origin; permessage-deflate offered, as
browsers do), waits for each one's first frame (the full render), then prints
"READY <open> <failed>". From then on it notes, for every socket, when an order number
(`data-order-number="#N"`) first appears in a frame, and counts frames and bytes, both
as received on the wire (compressed) and as payload. On "STOP <from> <to>" (monotonic
times) on stdin it writes its results, counting frames and bytes within that window,
to the output file, and exits.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

ORDER_NUMBER = re.compile(r'data-order-number="(#\d+)"')
HEARTBEAT = "<!-- heartbeat -->"


class Socket:
    def __init__(self, index: int, store: int) -> None:
        self.index = index
        self.store = store
        self.connected_at = 0.0
        self.first_frame_at = 0.0
        self.wire_bytes = 0
        self.seen: dict[str, float] = {}
        self.frames: list[tuple[float, int, int]] = []  # (time, payload bytes, wire bytes so far)
        self.closed: str | None = None


def counting_connection(sock: Socket) -> type[ClientConnection]:
    class Counting(ClientConnection):
        def data_received(self, data: bytes) -> None:
            sock.wire_bytes += len(data)
            super().data_received(data)

    return Counting


async def run_socket(sock: Socket, url: str, origin: str, cookie: str, ready: asyncio.Event, measuring: list[bool]) -> None:
    try:
        async with connect(
            url,
            origin=origin,
            additional_headers={"Cookie": f"sessionid={cookie}"},
            proxy=None,
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
                    ready.set()
                sock.frames.append((now, len(text.encode()), sock.wire_bytes))
                if measuring[0] and text != HEARTBEAT:
                    for number in ORDER_NUMBER.findall(text):
                        sock.seen.setdefault(number, now)
    except Exception as exc:  # noqa: BLE001 - reported, never fatal for the other sockets
        sock.closed = f"{type(exc).__name__}: {exc}"[:200]
        ready.set()
        return
    sock.closed = "closed by server"
    ready.set()


async def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    url_base = f"ws://127.0.0.1:{job['port']}"
    origin = f"http://127.0.0.1:{job['port']}"
    sockets: list[Socket] = []
    tasks = []
    readies = []
    measuring = [False]
    interval = 1.0 / job["connect_rate"]
    started = time.monotonic()
    for n, spec in enumerate(job["sockets"]):
        delay = started + n * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sock = Socket(spec["index"], spec["store"])
        ready = asyncio.Event()
        sockets.append(sock)
        readies.append(ready)
        tasks.append(asyncio.create_task(
            run_socket(sock, f"{url_base}/ws/stores/{spec['public_id']}/", origin, spec["cookie"], ready, measuring)))
    try:
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=job.get("ready_timeout", 300))
    except TimeoutError:
        pass
    measuring[0] = True
    open_count = sum(1 for s in sockets if s.first_frame_at and s.closed is None)
    print(f"READY {open_count} {len(sockets) - open_count}", flush=True)

    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    _, window_from, window_to = line.split()
    t0, t1 = float(window_from), float(window_to)
    result = []
    for sock in sockets:
        in_window = [(t, size, wire) for t, size, wire in sock.frames if t0 <= t <= t1]
        before = [wire for t, _, wire in sock.frames if t < t0]
        wire_at_t0 = before[-1] if before else 0
        wire_in_window = (in_window[-1][2] - wire_at_t0) if in_window else 0
        result.append({
            "index": sock.index,
            "store": sock.store,
            "connect_s": round(sock.first_frame_at - sock.connected_at, 4) if sock.first_frame_at else None,
            "frames": len(in_window),
            "payload_bytes": sum(size for _, size, _ in in_window),
            "wire_bytes": wire_in_window,
            "seen": sock.seen,
            "closed": sock.closed,
        })
    Path(job["out"]).write_text(json.dumps(result))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
