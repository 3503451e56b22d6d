"""Open dashboards on one web process until latency or memory degrades.

One uvicorn process (`--workers 1`) serves `config.asgi:application`, with the
procrastinate worker running. Dashboard WebSockets (`/ws/stores/<id>/`, signed in as
the store's owner, Origin and permessage-deflate as a browser sends them) are added in
steps (default 1,000, 2,500, 5,000, 7,500, 10,000), spread over S stores (dashboard i
on store i mod S) and held by bench/wsclients.py processes in step mode. A socket counts
as open once its first frame (the full render) has arrived; one that failed to connect,
was refused or closed is counted apart.

At each step:

1. open the additional sockets at a bounded rate and wait for their first frames;
2. let the process settle, then, over an idle window, measure the web process's CPU
   and read its memory (psutil: RSS, and USS from smaps). Memory per dashboard is
   (RSS − idle baseline) / sockets open, the baseline being the process after a
   warm-up (a few dashboards opened, served some orders, closed) with no socket open;
   the marginal figure is ΔRSS / Δsockets since the previous step;
3. post signed `orders/create` / `order.created` webhooks for new orders through the
   real ingest endpoint at a modest fixed rate (default 20/s, round-robin over the
   stores; bench/loadgen.py), keep listening for a grace period, and measure for each
   accepted order and each dashboard of its store that was open the whole window the
   time from sending the webhook to the frame that first contains
   `data-order-number="#N"` (every process reads the same monotonic clock, as in
   bench/e2e.py); an order not shown by the end of the window (sending + grace) is
   missed. CPU is counted per group of processes (machine.CpuMeter): web, worker,
   clients, PostgreSQL, and "other", what the rest of the machine did meanwhile.

The run stops after a step where connections failed, or after two consecutive steps
where p99 exceeded 250 ms or memory per dashboard exceeded 50 KiB (--keep-going
measures every step anyway).

The ceiling, in the same run and under the same uvicorn options and clients:
bench/bare_ws.py, a bare ASGI app that accepts the same sockets, sends each one frame
on connect, and broadcasts a frame of similar size to the store's sockets for every
POST. The report gives OpsPulse / bare per socket, for memory and latency.
--no-deflate (clients offer no permessage-deflate) separates the memory of the
server's per-socket compressor from the rest.

Descriptors: the benchmark raises its RLIMIT_NOFILE soft limit to the hard limit, and
the processes it starts inherit it (the client processes raise theirs too); each
socket costs one descriptor in the server and one in a client process, and each
client connection one local port of the ephemeral range.

    .venv/bin/python bench/connections.py --scratch-db                   # 1k … 10k dashboards, 100 stores
    .venv/bin/python bench/connections.py --steps 200,500 --stores 20    # a small run
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import database, machine, processes, reports, request_files, runtime, tenants  # noqa: E402
from support.load_generation import run_loadgen  # noqa: E402
from support.machine import CpuMeter  # noqa: E402
from support.processes import Service  # noqa: E402
from support.runtime import BENCH, PYTHON, log  # noqa: E402

TARGET_DASHBOARDS = 10_000
KIB = 1024


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="1000,2500,5000,7500,10000",
                        help="open dashboards at each step, increasing (comma-separated)")
    parser.add_argument("--stores", type=int, default=100, help="stores the dashboards are spread over (S)")
    parser.add_argument("--rate", type=float, default=20, help="order webhooks per second at each step, all stores")
    parser.add_argument("--duration", type=float, default=20, help="seconds of sending at each step")
    parser.add_argument("--grace", type=float, default=5, help="seconds to keep listening after the last webhook")
    parser.add_argument("--connect-rate", type=float, default=100, help="new sockets per second while opening")
    parser.add_argument("--settle", type=float, default=5, help="seconds to wait after the sockets of a step opened")
    parser.add_argument("--idle-seconds", type=float, default=30,
                        help="idle window (sockets held, no webhooks) over which CPU is measured before memory is "
                             "read; 30 s holds one of each dashboard's periodic heartbeats")
    parser.add_argument("--client-procs", type=int, default=0,
                        help="client processes (default: one per 1,000 sockets of the largest step, at least 2)")
    parser.add_argument("--warmup", type=int, default=10,
                        help="dashboards opened, served orders for a few seconds and closed before the idle baseline")
    parser.add_argument("--p99-limit-ms", type=float, default=250, help="latency at which a step counts as degraded")
    parser.add_argument("--kib-limit", type=float, default=50,
                        help="memory per dashboard (KiB of RSS) above which a step counts as degraded")
    parser.add_argument("--keep-going", action="store_true",
                        help="measure every step even after two degraded steps (still stops when connections fail)")
    parser.add_argument("--phases", default="bare,opspulse",
                        help="what to measure: bare (bench/bare_ws.py), opspulse, or both (default)")
    parser.add_argument("--no-deflate", action="store_true",
                        help="clients offer no permessage-deflate (browsers do): shows the memory of the server's "
                             "per-socket compressor, as `uvicorn --ws-per-message-deflate false` would save it")
    parser.add_argument("--server-deflate", action="store_true",
                        help="serve with permessage-deflate (`uvicorn --ws-per-message-deflate true`); OpsPulse "
                             "serves without it (opspulse/lib/serve.py)")
    parser.add_argument("--bare-frame-bytes", type=int, default=4000,
                        help="payload of the bare app's frames (about an OpsPulse update)")
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--worker-nice", type=int, default=0,
                        help="run the worker under `nice -n N` (CPU priority below the web process)")
    parser.add_argument("--quiet-wait", type=float, default=30,
                        help="seconds to wait, before each phase, for other work on the machine to settle")
    parser.add_argument("--debug", action="store_true", help="run the servers with DEBUG=true (default false)")
    parser.add_argument("--result-name", default="connections", help="write bench/results/<name>.json")
    parser.add_argument("--scratch-db", action="store_true",
                        help="use a new database on the same PostgreSQL server, dropped at the end, instead of the "
                             "development database (no other worker on the dev database can take the jobs)")
    args = parser.parse_args()
    try:
        args.steps = [int(step) for step in args.steps.split(",") if step.strip()]
    except ValueError:
        parser.error("--steps: comma-separated integers")
    if not args.steps or args.steps != sorted(set(args.steps)) or args.steps[0] < 1 or args.steps[-1] > 50_000:
        parser.error("--steps must be increasing, between 1 and 50,000")
    if not 1 <= args.stores <= args.steps[0]:
        parser.error("need 1 <= --stores <= the first step")
    if not 0 < args.rate <= 1000 or not 0 < args.duration <= 300 or not 0 <= args.grace <= 120:
        parser.error("--rate must be in (0, 1000], --duration in (0, 300] and --grace in [0, 120]")
    if not 1 <= args.connect_rate <= 5000:
        parser.error("--connect-rate must be in [1, 5000]")
    if not 0 <= args.settle <= 120 or not 1 <= args.idle_seconds <= 120:
        parser.error("--settle must be in [0, 120] and --idle-seconds in [1, 120]")
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not args.phases or any(p not in ("bare", "opspulse") for p in args.phases):
        parser.error("--phases: bare, opspulse or both")
    if not args.client_procs:
        args.client_procs = max(2, math.ceil(args.steps[-1] / 1000))
    return args


# ---------------------------------------------------------------------------
# Limits of this machine


def raise_open_files_limit() -> dict[str, int]:
    """Raise this process's RLIMIT_NOFILE soft limit to the hard one; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = soft
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return {"soft_before": before, "soft": soft, "hard": hard}


def _read_int_file(path: str) -> list[int]:
    try:
        return [int(x) for x in Path(path).read_text().split()]
    except (OSError, ValueError):
        return []


def machine_limits(nofile: dict[str, int], largest: int, client_procs: int) -> dict[str, Any]:
    """Descriptor and port limits that bound the open sockets, and whether the largest step fits."""
    ports = _read_int_file("/proc/sys/net/ipv4/ip_local_port_range")
    ephemeral = ports[1] - ports[0] + 1 if len(ports) == 2 else None
    limits: dict[str, Any] = {
        "nofile_soft_before": nofile["soft_before"],
        "nofile": nofile["soft"],
        "nofile_hard": nofile["hard"],
        "fs_file_max": (_read_int_file("/proc/sys/fs/file-max") or [None])[0],
        "fs_nr_open": (_read_int_file("/proc/sys/fs/nr_open") or [None])[0],
        "ephemeral_port_range": ports,
        "ephemeral_ports": ephemeral,
        "somaxconn": (_read_int_file("/proc/sys/net/core/somaxconn") or [None])[0],
    }
    problems = []
    # The web process holds every socket plus its own descriptors (listener, database, pipes).
    if largest + 200 > nofile["soft"]:
        problems.append(f"the web process can hold at most ~{nofile['soft'] - 200:,} sockets "
                        f"(RLIMIT_NOFILE {nofile['soft']:,}, hard limit {nofile['hard']:,})")
    per_client = math.ceil(largest / client_procs)
    if per_client + 100 > nofile["soft"]:
        problems.append(f"{per_client:,} sockets per client process exceed RLIMIT_NOFILE {nofile['soft']:,}")
    # All client sockets go to one server address and port: one ephemeral port each.
    if ephemeral is not None and largest > ephemeral:
        problems.append(f"{largest:,} client sockets to one address need more than the {ephemeral:,} "
                        f"ephemeral ports of {ports[0]}-{ports[1]}")
    limits["problems"] = problems
    return limits


# ---------------------------------------------------------------------------
# Memory of the web process


def memory_of(pids: set[int]) -> dict[str, Any]:
    """RSS and USS (bytes), descriptors and threads of the processes, summed."""
    import psutil

    rss = uss = fds = threads = 0
    uss_ok = True
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            try:
                full = proc.memory_full_info()
                rss += full.rss
                uss += full.uss
            except (psutil.AccessDenied, AttributeError):
                rss += proc.memory_info().rss
                uss_ok = False
            fds += proc.num_fds()
            threads += proc.num_threads()
        except psutil.NoSuchProcess:
            continue
    return {"rss": rss, "uss": uss if uss_ok else None, "fds": fds, "threads": threads}


def per_socket_kib(now: int | None, base: int | None, sockets: int) -> float | None:
    if now is None or base is None or sockets <= 0:
        return None
    return round((now - base) / sockets / KIB, 1)


# ---------------------------------------------------------------------------
# Client processes


class ClientPool:
    """wsclients.py processes in step mode, sockets dealt round-robin over them."""

    def __init__(self, *, port: int, procs: int, tmp: Path, name: str, compression: bool = True) -> None:
        self.port = port
        self.tmp = tmp
        self.name = name
        self.popens: list[subprocess.Popen] = []
        self.reports = 0
        for k in range(procs):
            job = tmp / f"{name}-clients-{k}.json"
            job.write_text(json.dumps({"mode": "steps", "port": port, "compression": compression}))
            self.popens.append(subprocess.Popen([PYTHON, str(BENCH / "wsclients.py"), str(job)],
                                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))

    def pids(self) -> list[int]:
        return [p.pid for p in self.popens if p.poll() is None]

    def _command(self, popen: subprocess.Popen, line: str) -> None:
        assert popen.stdin is not None
        popen.stdin.write(line + "\n")
        popen.stdin.flush()

    def _reply(self, popen: subprocess.Popen, expected: str) -> list[str]:
        assert popen.stdout is not None
        words = popen.stdout.readline().split()
        if not words or words[0] != expected:
            raise RuntimeError(f"client process {popen.pid} answered {words!r} instead of {expected}")
        return words[1:]

    def open(self, specs: list[dict[str, Any]], connect_rate: float, step: int) -> tuple[int, int, int]:
        """Open the sockets; return (newly open, newly failed, open in total)."""
        procs = len(self.popens)
        per_proc_rate = connect_rate / procs
        ready_timeout = 60 + 2 * math.ceil(len(specs) / procs) / per_proc_rate
        for k, popen in enumerate(self.popens):
            path = self.tmp / f"{self.name}-open-{step}-{k}.json"
            path.write_text(json.dumps({"sockets": specs[k::procs], "connect_rate": per_proc_rate,
                                        "ready_timeout": ready_timeout}))
            self._command(popen, f"OPEN {path}")
        opened = failed = total = 0
        for popen in self.popens:
            new_open, new_failed, open_total = (int(x) for x in self._reply(popen, "OPENED"))
            opened, failed, total = opened + new_open, failed + new_failed, total + open_total
        return opened, failed, total

    def report(self, window_from: float, window_to: float) -> list[dict[str, Any]]:
        self.reports += 1
        outs = []
        for k, popen in enumerate(self.popens):
            out = self.tmp / f"{self.name}-report-{self.reports}-{k}.json"
            self._command(popen, f"REPORT {window_from} {window_to} {out}")
            outs.append(out)
        sockets: list[dict[str, Any]] = []
        for popen, out in zip(self.popens, outs, strict=True):
            self._reply(popen, "REPORTED")
            sockets.extend(json.loads(out.read_text()))
            out.unlink(missing_ok=True)
        return sockets

    def quit(self) -> None:
        for popen in self.popens:
            if popen.poll() is None:
                try:
                    self._command(popen, "QUIT")
                except (BrokenPipeError, OSError):
                    pass
        for popen in self.popens:
            try:
                popen.wait(timeout=40)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()


# ---------------------------------------------------------------------------
# What each step sends


class OrderStream:
    """Signed new-order webhooks for the bench stores, numbered on across steps.

    Orders go round-robin over the stores; numbers (and external ids) keep increasing
    from one step to the next, so every order is new and goes to the top of its
    store's feed, and each step's orders are placed from the moment its file is made.
    """

    def __init__(self, targets: list[Any], rate: float) -> None:
        self.rate = rate
        self.index = 0
        self.base = datetime.now(UTC)
        self.base_index = 0
        self._orders: Iterator[tuple[int, str, str, bytes]] = request_files.order_creates(
            targets, count=10**8, first_number=10001, created_at=self._placed)

    def _placed(self, index: int) -> datetime:
        return self.base + timedelta(seconds=(index - self.base_index) / self.rate)

    def write(self, path: Path, count: int) -> list[tuple[int, str]]:
        """Write `count` requests to `path`; return (store index, "#N") of each."""
        self.base, self.base_index = datetime.now(UTC), self.index
        order_of = []
        with path.open("wb") as out:
            for _ in range(count):
                store_index, number, _key, raw = next(self._orders)
                self.index += 1
                request_files.write_record(out, raw)
                order_of.append((store_index, number))
        return order_of


class PublishStream:
    """Requests for the bare app: POST /publish/<store>/ with the order number as the body."""

    def __init__(self, public_ids: list[str]) -> None:
        self.public_ids = public_ids
        self.index = 0

    def write(self, path: Path, count: int) -> list[tuple[int, str]]:
        order_of = []
        with path.open("wb") as out:
            for _ in range(count):
                store_index = self.index % len(self.public_ids)
                number = f"#{10001 + self.index // len(self.public_ids)}"
                self.index += 1
                request_files.write_record(out, request_files.raw_request(
                    f"/publish/{self.public_ids[store_index]}/", {"Content-Type": "text/plain"}, number.encode()))
                order_of.append((store_index, number))
        return order_of


# ---------------------------------------------------------------------------
# The benchmark


@dataclass
class Phase:
    """One server under test: OpsPulse (with its worker) or the bare app."""

    name: str
    web: Service
    port: int
    requests: OrderStream | PublishStream
    others: dict[str, Service] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)
    # The code the server loaded: the tree may change during a long run.
    code: dict[str, Any] = field(default_factory=reports.code_version)
    stop_reason: str | None = None


class ConnectionsBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tenant = tenants.Tenant(script="connections")
        self.services: list[Service] = []
        self.pools: list[ClientPool] = []
        self.specs: list[dict[str, Any]] = []

    # -- run

    def run(self) -> None:
        a = self.args
        nofile = raise_open_files_limit()
        limits = machine_limits(nofile, a.steps[-1], a.client_procs)
        log(f"RLIMIT_NOFILE {nofile['soft_before']:,} -> {nofile['soft']:,} (hard {nofile['hard']:,}); "
            f"ephemeral ports {limits['ephemeral_port_range']} ({limits['ephemeral_ports']:,})")
        for problem in limits["problems"]:
            log(f"WARNING: this machine limits the run: {problem}")
        scratch = database.use_scratch_database() if a.scratch_db else None
        runtime.setup_django()
        tenants.delete_stale_tenants()
        foreign = processes.warn_foreign_workers()
        result: dict[str, Any] = {"benchmark": "connections", "started_at": reports.now_iso(),
                                  "machine": machine.machine(), "limits": limits, "config": dict(vars(a)),
                                  "foreign_workers": foreign, "code": reports.code_version()}
        try:
            with processes.work_dir("connections") as tmp:
                result.update(self.measure(tmp))
        finally:
            processes.tear_down(popens=[popen for pool in self.pools for popen in pool.popens],
                                services=self.services, tenant=self.tenant, scratch=scratch)
        reports.finish(a.result_name, result)

    def measure(self, tmp: Path) -> dict[str, Any]:
        from django.db import connection

        a = self.args
        self.tenant.create(stores=a.stores, stores_per_account=1)
        cookies = [self.tenant.login_cookie(user_id) for user_id in self.tenant.user_ids]
        log(f"created {a.stores} stores, {len(cookies)} signed-in owners (run {self.tenant.run})")
        stores = self.tenant.stores
        # Dashboard i watches store i % S, signed in as that store's owner.
        self.specs = [{"index": i, "store": i % a.stores, "public_id": str(stores[i % a.stores].public_id),
                       "cookie": cookies[i % a.stores]} for i in range(a.steps[-1])]
        targets = self.tenant.targets()
        connection.close()

        phases: dict[str, Phase] = {}
        for name in a.phases:
            phase = self.start_bare(tmp) if name == "bare" else self.start_opspulse(tmp, targets)
            try:
                self.measure_phase(phase, tmp)
            finally:
                for service in [phase.web, *phase.others.values()]:
                    service.stop()
                    self.services.remove(service)
            phases[name] = phase
        return self.report(phases)

    def start_opspulse(self, tmp: Path, targets: list[Any]) -> Phase:
        a = self.args
        env = processes.service_env(debug=a.debug)
        worker = processes.start_worker("worker", concurrency=a.worker_concurrency, env=env, logdir=tmp,
                                        nice=a.worker_nice)
        self.services.append(worker)
        port = processes.free_port()
        web = processes.start_web("web", "config.asgi:application", port=port, workers=1, env=env, logdir=tmp,
                                  deflate=a.server_deflate)
        self.services.append(web)
        log(f"OpsPulse on port {port} (uvicorn --workers 1, pid {web.pid}, permessage-deflate "
            f"{'on' if a.server_deflate else 'off'}; worker --concurrency {a.worker_concurrency})")
        return Phase("opspulse", web, port, OrderStream(targets, a.rate), others={"worker": worker})

    def start_bare(self, tmp: Path) -> Phase:
        a = self.args
        env = processes.service_env(debug=a.debug, BARE_WS_FRAME_BYTES=str(a.bare_frame_bytes))
        port = processes.free_port()
        web = processes.start_web("bare", "bare_ws:app", port=port, workers=1, env=env, logdir=tmp, ready_path="/",
                                  app_dir=str(BENCH), deflate=a.server_deflate)
        self.services.append(web)
        log(f"bare WebSocket app on port {port} (uvicorn --workers 1, pid {web.pid})")
        return Phase("bare", web, port, PublishStream([str(s.public_id) for s in self.tenant.stores]))

    def web_pids(self, phase: Phase) -> set[int]:
        return phase.web.pids()

    def meter(self, phase: Phase, pool: ClientPool | None) -> CpuMeter:
        groups: dict[str, Callable[[], Any]] = {"web": phase.web.pids}
        if "worker" in phase.others:
            groups["worker"] = phase.others["worker"].pids
        if pool is not None:
            groups["clients"] = pool.pids
        return CpuMeter(groups)

    def send(self, phase: Phase, tmp: Path, label: str, duration: float) -> tuple[dict[str, Any], list, float]:
        """Send orders at the fixed rate for `duration` s; return (loadgen result, order_of, sender CPU s)."""
        a = self.args
        prefix = tmp / f"{phase.name}-{label}"
        order_of = phase.requests.write(Path(f"{prefix}-0.bin"), int(a.rate * duration) + 10)
        load = run_loadgen(port=phase.port, prefix=str(prefix), files=1, rate=a.rate, duration=duration,
                           record_sends=True, tmp=tmp, name=f"{phase.name}-{label}")
        Path(f"{prefix}-0.bin").unlink(missing_ok=True)
        return load, order_of, load.pop("generator_cpu_s")

    def measure_phase(self, phase: Phase, tmp: Path) -> None:
        a = self.args
        # Warm-up: imports, templates, thread pool, database connections; then the idle baseline.
        if a.warmup:
            warm = ClientPool(port=phase.port, procs=1, tmp=tmp, name=f"{phase.name}-warmup",
                              compression=not a.no_deflate)
            self.pools.append(warm)
            specs = [dict(spec, index=-1 - i) for i, spec in enumerate(self.specs[:a.warmup])]
            opened, failed, _ = warm.open(specs, min(a.connect_rate, 50), step=0)
            self.send(phase, tmp, "warmup", 3)
            time.sleep(a.grace)
            warm.quit()
            log(f"{phase.name}: warm-up with {opened} dashboards ({failed} failed) done")
        time.sleep(3)
        quiet = machine.wait_for_quiet(a.quiet_wait)
        meter = self.meter(phase, None)
        meter.start()
        time.sleep(a.idle_seconds)
        phase.baseline = {"memory": memory_of(self.web_pids(phase)), "cpu_cores": meter.stop(),
                          "machine_before": quiet}
        base = phase.baseline["memory"]
        log(f"{phase.name}: idle baseline RSS {base['rss'] / 2**20:.1f} MiB"
            + (f", USS {base['uss'] / 2**20:.1f} MiB" if base["uss"] is not None else "")
            + f", {base['fds']} fds, {base['threads']} threads")

        pool = ClientPool(port=phase.port, procs=a.client_procs, tmp=tmp, name=phase.name,
                          compression=not a.no_deflate)
        self.pools.append(pool)
        degraded_run = 0
        previous: dict[str, Any] = {"open": 0, "memory": base}
        try:
            for n in a.steps:
                step = self.measure_step(phase, pool, tmp, n, previous)
                phase.steps.append(step)
                previous = step
                print_steps(phase)
                if step["failed_total"]:
                    phase.stop_reason = (f"{step['failed_total']:,} sockets failed to open or closed "
                                         f"by step {n:,}")
                    break
                if phase.name == "opspulse":
                    degraded_run = degraded_run + 1 if step["degraded"] else 0
                    if degraded_run >= 2 and not a.keep_going and n != a.steps[-1]:
                        phase.stop_reason = (f"two consecutive degraded steps (p99 > {a.p99_limit_ms:g} ms or "
                                             f"> {a.kib_limit:g} KiB per dashboard)")
                        break
        finally:
            pool.quit()
        if phase.stop_reason:
            log(f"{phase.name}: stopped: {phase.stop_reason}")

    def measure_step(self, phase: Phase, pool: ClientPool, tmp: Path, n: int,
                     previous: dict[str, Any]) -> dict[str, Any]:
        a = self.args
        prev_n = previous.get("asked", 0)
        specs = self.specs[prev_n:n]
        log(f"{phase.name}: opening {len(specs):,} more dashboards (to {n:,}) at {a.connect_rate:g}/s")
        meter = self.meter(phase, pool)
        meter.start()
        started = time.monotonic()
        opened, failed, open_total = pool.open(specs, a.connect_rate, step=n)
        connect_seconds = time.monotonic() - started
        connect_cores = meter.stop()
        log(f"  {opened:,} opened, {failed:,} failed in {connect_seconds:.1f}s; {open_total:,} open; "
            f"cores: {machine.cpu_line(connect_cores)}")

        time.sleep(a.settle)
        meter = self.meter(phase, pool)
        meter.start()
        time.sleep(a.idle_seconds)
        idle_cores = meter.stop()
        memory = memory_of(self.web_pids(phase))
        base = phase.baseline["memory"]
        kib = per_socket_kib(memory["rss"], base["rss"], open_total)
        kib_uss = per_socket_kib(memory["uss"], base["uss"], open_total)
        marginal = per_socket_kib(memory["rss"], previous["memory"]["rss"], open_total - previous["open"])
        log(f"  idle: RSS {memory['rss'] / 2**20:.1f} MiB, {kib} KiB per dashboard (marginal {marginal}), "
            f"USS {kib_uss} KiB; web {idle_cores.get('web', 0):.2f} cores")

        log(f"  sending {a.rate:g} orders/s for {a.duration:g}s")
        meter = self.meter(phase, pool)
        meter.start()
        window_from = time.monotonic()
        load, order_of, sender_cpu = self.send(phase, tmp, f"step{n}", a.duration)
        time.sleep(a.grace)
        window_to = time.monotonic()
        load_cores = meter.stop({"sender": sender_cpu})
        sockets = pool.report(window_from, window_to)
        memory_after = memory_of(self.web_pids(phase))
        updates = analyse(load, order_of, sockets, window_from, window_to)
        lat = updates["latency_ms"]
        new = [s for s in sockets if s["connect_s"] is not None and prev_n <= s["index"] < n]
        connect_ms = [s["connect_s"] * 1000 for s in new]
        failed_total = sum(1 for s in sockets if s["opened_at"] is None or s["closed"] is not None)
        reasons = Counter(s["closed"] or "no first frame" for s in sockets
                          if s["opened_at"] is None or s["closed"] is not None)
        degraded = (lat.get("p99") is None or lat["p99"] > a.p99_limit_ms
                    or (kib is not None and kib > a.kib_limit))
        if reasons:
            log(f"  failed or closed sockets: {dict(reasons.most_common(3))}")
        log(f"  ack p99 {load['latency_ms'].get('p99')} ms; webhook → dashboard p50 {lat.get('p50')} "
            f"p99 {lat.get('p99')} max {lat.get('max')} ms; seen {updates['seen']:,}, missed {updates['missed']:,}; "
            f"web {load_cores.get('web', 0):.2f} cores")
        return {
            "asked": n,
            "open": open_total,
            "opened_this_step": opened,
            "failed_this_step": failed,
            "failed_total": failed_total,
            "failure_reasons": dict(reasons.most_common(5)),
            "connect_s": round(connect_seconds, 1),
            "connect_per_s": round(opened / connect_seconds, 1) if connect_seconds else None,
            "connect_first_frame_ms": reports.latency_summary(connect_ms),
            "first_frame_payload_bytes": round(sum(s["first_frame_bytes"] for s in new) / len(new)) if new else None,
            "connect_cpu_cores": connect_cores,
            "memory": memory,
            "memory_after_updates": memory_after,
            "kib_per_dashboard_rss": kib,
            "kib_per_dashboard_uss": kib_uss,
            "kib_marginal_rss": marginal,
            "kib_per_dashboard_rss_after_updates": per_socket_kib(memory_after["rss"], base["rss"], open_total),
            "idle_cpu_cores": idle_cores,
            "load_cpu_cores": load_cores,
            "webhooks_sent": load["sent"],
            "webhooks_accepted": load["ok"],
            "webhook_status": load["status"],
            "webhook_ack_ms": load["latency_ms"],
            **updates,
            "degraded": degraded,
        }

    # -- report

    def report(self, phases: dict[str, Phase]) -> dict[str, Any]:
        a = self.args
        out: dict[str, Any] = {"phases": {}}
        for name, phase in phases.items():
            out["phases"][name] = {"code": phase.code, "baseline": phase.baseline, "steps": phase.steps, "stop_reason": phase.stop_reason,
                                   "table": print_steps(phase, final=True)}
        ops, bare = phases.get("opspulse"), phases.get("bare")
        if ops and bare:
            bare_by = {s["asked"]: s for s in bare.steps}
            rows = []
            ratios = []
            for s in ops.steps:
                b = bare_by.get(s["asked"])
                if b is None:
                    continue
                ratio = {"asked": s["asked"],
                         "kib_rss": _ratio(s["kib_per_dashboard_rss"], b["kib_per_dashboard_rss"]),
                         "kib_marginal": _ratio(s["kib_marginal_rss"], b["kib_marginal_rss"]),
                         "p99": _ratio(s["latency_ms"].get("p99"), b["latency_ms"].get("p99")),
                         "idle_web_cores": _ratio(s["idle_cpu_cores"].get("web"), b["idle_cpu_cores"].get("web"))}
                ratios.append(ratio)
                rows.append([s["asked"], s["kib_per_dashboard_rss"], b["kib_per_dashboard_rss"], ratio["kib_rss"],
                             s["kib_marginal_rss"], b["kib_marginal_rss"], s["latency_ms"].get("p99"),
                             b["latency_ms"].get("p99"), ratio["p99"], s["idle_cpu_cores"].get("web"),
                             b["idle_cpu_cores"].get("web")])
            out["ratios"] = ratios
            out["ratio_table"] = reports.print_table(
                "OpsPulse / bare WebSocket app, per socket",
                ["dashboards", "OpsPulse KiB", "bare KiB", "ratio", "OpsPulse marginal", "bare marginal",
                 "OpsPulse p99 ms", "bare p99 ms", "ratio", "OpsPulse idle cores", "bare idle cores"], rows)
        if ops:
            crossed = next((s["asked"] for s in ops.steps if s["latency_ms"].get("p99") is None
                            or s["latency_ms"]["p99"] > a.p99_limit_ms), None)
            reached = max((s["open"] for s in ops.steps), default=0)
            at_target = next((s for s in ops.steps if s["asked"] >= TARGET_DASHBOARDS), None)
            largest = ops.steps[-1] if ops.steps else None
            kib = largest["kib_per_dashboard_rss"] if largest else None
            targets = [
                {"target": f"{TARGET_DASHBOARDS:,} dashboards open on one web process", "measured": reached,
                 "met": reached >= TARGET_DASHBOARDS},
                {"target": f"< {a.kib_limit:g} KiB per dashboard (RSS)",
                 "measured": f"{kib} KiB at {largest['open']:,}" if largest else None,
                 "met": bool(at_target and kib is not None and kib < a.kib_limit)},
                {"target": f"p99 webhook → dashboard < {a.p99_limit_ms:g} ms",
                 "measured": f"first passed at {crossed:,} dashboards" if crossed else "never passed",
                 "met": crossed is None and at_target is not None},
            ]
            out["p99_passed_limit_at"] = crossed
            out["max_open"] = reached
            out["targets"] = targets
            out["targets_table"] = reports.print_table(
                "Connections targets (one web process)", ["target", "measured", "met"],
                [[t["target"], t["measured"], "yes" if t["met"] else "NO"] for t in targets])
        return out


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 2)


def analyse(load: dict[str, Any], order_of: list[tuple[int, str]], sockets: list[dict[str, Any]],
            window_from: float, window_to: float) -> dict[str, Any]:
    """Webhook → dashboard latency over the sockets open for the whole window; bytes and frames per update."""
    sent: dict[tuple[int, str], float] = {}
    for _k, index, sent_at, _acked, status in load["sends"]:
        if status == 200:
            sent[order_of[index]] = sent_at
    live = [s for s in sockets if s["opened_at"] is not None and s["opened_at"] < window_from and s["closed"] is None]
    latencies, missed, per_order = reports.orders_on_screens(live, sent)
    window = window_to - window_from
    return {
        "sockets_measured": len(live),
        "closed_during_step": sum(1 for s in sockets if s["closed_at"] is not None
                                  and window_from <= s["closed_at"] <= window_to),
        "orders_accepted": len(sent),
        "due": len(latencies) + missed,
        "seen": len(latencies),
        "missed": missed,
        "latency_ms": reports.latency_summary(latencies),
        "per_order_per_dashboard": per_order,
        "wire_mbytes_per_s_total": round(sum(s["wire_bytes"] for s in live) / window / 1e6, 2),
        "window_s": round(window, 1),
    }


STEP_HEADERS = ["dashboards", "open", "failed", "RSS MiB", "KiB/dash RSS", "KiB/dash USS", "marginal KiB",
                "KiB after upd.", "web cores idle", "web cores load", "other cores", "ack p99 ms", "e2e p50", "p95",
                "p99", "max", "missed/due"]


def print_steps(phase: Phase, final: bool = False) -> str:
    rows = []
    for s in phase.steps:
        lat = s["latency_ms"]
        rows.append([s["asked"], s["open"], s["failed_total"], s["memory"]["rss"] / 2**20, s["kib_per_dashboard_rss"],
                     s["kib_per_dashboard_uss"], s["kib_marginal_rss"], s["kib_per_dashboard_rss_after_updates"],
                     s["idle_cpu_cores"].get("web"), s["load_cpu_cores"].get("web"),
                     s["load_cpu_cores"].get("other (not this benchmark)"),
                     s["webhook_ack_ms"].get("p99"), lat.get("p50"), lat.get("p95"), lat.get("p99"), lat.get("max"),
                     f"{s['missed']:,}/{s['due']:,}"])
    base = phase.baseline.get("memory", {})
    title = (f"{'OpsPulse' if phase.name == 'opspulse' else 'Bare WebSocket app'}: one web process "
             f"(idle baseline RSS {base.get('rss', 0) / 2**20:.1f} MiB)")
    if final and phase.stop_reason:
        title += f"; stopped: {phase.stop_reason}"
    return reports.print_table(title, STEP_HEADERS, rows)


def main() -> None:
    runtime.stop_on_sigterm()
    ConnectionsBench(parse_args()).run()


if __name__ == "__main__":
    main()
