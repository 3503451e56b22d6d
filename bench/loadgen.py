"""Open-loop HTTP/1.1 load generator: replays a request file at a fixed rate.

Debian's wrk has no constant-rate mode (wrk2's -R is not in it), so fixed-rate phases
use this instead; wrk drives the saturation phases. Request i is due at
start + i/rate whatever happened to earlier ones, and its latency is measured from
that due time, so a server that falls behind shows it as latency rather than as a
lower send rate (no coordinated omission). Connections are kept alive and opened on
demand up to --max-conns; a request that finds none free waits, and the wait counts.
A request still waiting for a connection after --give-up seconds is dropped and
counted as "gave_up", as a platform's sender would time out, so an overloaded server
cannot pile up an unbounded queue here.

Run one per core-ish, each with its own file; the parent merges their outputs:

    python bench/loadgen.py --port 8000 --file reqs-0.bin --rate 250 --duration 15 --out out.json

Every second it prints a progress line (JSON) on stdout; the full result goes to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.request_files import read_requests  # noqa: E402

CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class Connection(asyncio.Protocol):
    def __init__(self, gen: LoadGen) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.current: tuple[int, float, float] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.current is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[: end + 2])
            match = CONTENT_LENGTH.search(head)
            total = end + 4 + (int(match[1]) if match else 0)
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            status = int(head[9:12])
            keep = b"connection: close" not in head.lower()
            job, self.current = self.current, None
            self.gen.completed(self, job, status, keep)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.current is not None:
            job, self.current = self.current, None
            self.gen.failed(job, "conn_lost")
        self.gen.lost(self)


class LoadGen:
    def __init__(self, args: argparse.Namespace) -> None:
        self.host, self.port = args.host, args.port
        self.rate, self.duration = args.rate, args.duration
        # Piecewise-constant rate: [[from second, requests per second], ...], else --rate throughout.
        self.schedule = json.loads(Path(args.schedule).read_text()) if args.schedule else [[0.0, args.rate]]
        self.start_at = args.start_at or time.monotonic() + 0.2
        self.max_conns = args.max_conns
        self.give_up = args.give_up
        self.record_sends = args.record_sends
        self.requests = read_requests(Path(args.file))
        self.idle: list[Connection] = []
        self.conns: set[Connection] = set()
        self.opening = 0
        self.waiting: collections.deque[tuple[int, float, bytes]] = collections.deque()
        self.in_flight = 0
        self.sent = 0
        self.status: collections.Counter[str] = collections.Counter()
        self.latency_ms: list[float] = []
        self.send_lag_ms: list[float] = []
        self.sends: list[tuple[int, float, float, int]] = []
        self.per_second: list[list[int]] = []
        self.ok = 0
        self.exhausted = False

    # -- sending

    def dispatch(self, job: tuple[int, float, bytes]) -> None:
        self.in_flight += 1
        while self.waiting and time.monotonic() - self.waiting[0][1] > self.give_up:
            self.in_flight -= 1
            self.status["gave_up"] += 1
            self.waiting.popleft()
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                self.send(conn, job)
                return
        if len(self.conns) + self.opening < self.max_conns:
            self.opening += 1
            asyncio.get_running_loop().create_task(self.open_and_send(job))
        else:
            self.waiting.append(job)

    async def open_and_send(self, job: tuple[int, float, bytes]) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: Connection(self), self.host, self.port)
        except OSError:
            self.opening -= 1
            self.failed((job[0], job[1], time.monotonic()), "connect_error")
            await asyncio.sleep(0.05)
            return
        self.opening -= 1
        self.conns.add(conn)
        self.send(conn, job)

    def send(self, conn: Connection, job: tuple[int, float, bytes]) -> None:
        index, due, request = job
        sent = time.monotonic()
        conn.current = (index, due, sent)
        self.send_lag_ms.append((sent - due) * 1000)
        assert conn.transport is not None
        conn.transport.write(request)

    def next_waiting(self, conn: Connection | None) -> None:
        if not self.waiting:
            if conn is not None:
                self.idle.append(conn)
            return
        job = self.waiting.popleft()
        if conn is not None:
            self.send(conn, job)
        else:
            self.in_flight -= 1  # dispatch() counts it again
            self.dispatch(job)

    # -- results

    def completed(self, conn: Connection, job: tuple[int, float, float], status: int, keep: bool) -> None:
        now = time.monotonic()
        index, due, sent = job
        self.in_flight -= 1
        self.status[str(status)] += 1
        if 200 <= status < 300:
            self.ok += 1
        self.latency_ms.append((now - due) * 1000)
        if self.record_sends:
            self.sends.append((index, sent, now, status))
        if keep and not conn.closed:
            self.next_waiting(conn)
        else:
            assert conn.transport is not None
            conn.transport.close()
            self.next_waiting(None)

    def failed(self, job: tuple[int, float, float], kind: str) -> None:
        self.in_flight -= 1
        self.status[kind] += 1
        if self.record_sends:
            self.sends.append((job[0], job[2], time.monotonic(), 0))
        if self.waiting:
            self.next_waiting(None)

    def lost(self, conn: Connection) -> None:
        self.conns.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)

    # -- main loop

    async def progress(self) -> None:
        last_sent = last_ok = 0
        while True:
            await asyncio.sleep(1.0)
            row = [round(time.monotonic() - self.start_at), self.sent - last_sent, self.ok - last_ok]
            last_sent, last_ok = self.sent, self.ok
            self.per_second.append(row)
            print(json.dumps({"t": row[0], "sent": self.sent, "ok": self.ok, "in_flight": self.in_flight}), flush=True)

    def due_times(self):
        """Send times (offsets from the start) following the schedule, until the duration ends."""
        segments = sorted((float(at), float(rate)) for at, rate in self.schedule)
        for n, (at, rate) in enumerate(segments):
            until = segments[n + 1][0] if n + 1 < len(segments) else self.duration
            until = min(until, self.duration)
            if rate <= 0:
                continue
            k = 0
            while (offset := at + k / rate) < until:
                yield offset
                k += 1

    async def run(self) -> None:
        reporter = asyncio.get_running_loop().create_task(self.progress())
        index = 0
        for offset in self.due_times():
            due = self.start_at + offset
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            request = next(self.requests, None)
            if request is None:
                self.exhausted = True
                break
            self.sent += 1
            self.dispatch((index, due, request))
            index += 1
        deadline = time.monotonic() + 15
        while self.in_flight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        reporter.cancel()
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.close()

    def result(self) -> dict:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        lag = sorted(self.send_lag_ms)
        return {
            "sent": self.sent,
            "ok": self.ok,
            "status": dict(self.status),
            "unanswered": self.in_flight,
            "exhausted": self.exhausted,
            "latency_ms": [round(x, 3) for x in self.latency_ms],
            "send_lag_ms_p99": round(lag[int(0.99 * (len(lag) - 1))], 3) if lag else 0.0,
            "per_second": self.per_second,
            "connections_opened_max": self.max_conns,
            "sends": self.sends,
            "cpu_s": usage.ru_utime + usage.ru_stime,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="requests per second from this process")
    parser.add_argument("--schedule", help="JSON file: [[from second, rate], ...] instead of a constant --rate")
    parser.add_argument("--duration", type=float, required=True, help="seconds of sending")
    parser.add_argument("--start-at", type=float, default=0.0, help="time.monotonic() value to start at")
    parser.add_argument("--max-conns", type=int, default=256)
    parser.add_argument("--give-up", type=float, default=10.0, help="seconds a request may wait for a connection")
    parser.add_argument("--record-sends", action="store_true", help="keep (index, sent, acked, status) per request")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if not args.schedule and args.rate <= 0:
        parser.error("give --rate or --schedule")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loadgen only targets the loopback interface")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    gen = LoadGen(args)
    asyncio.run(gen.run())
    Path(args.out).write_text(json.dumps(gen.result()))


if __name__ == "__main__":
    main()
