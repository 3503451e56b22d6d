"""Plumbing shared by the benchmarks: Django, bench tenants, processes, CPU accounting, reports.

Benchmarks run against the development database (or DATABASE_URL) and create their own
accounts, users and stores, named `opspulse-bench ...`; they delete them at the end, and
a later run deletes those of a run that died without cleaning up.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PYTHON = sys.executable
ACCOUNT_PREFIX = "opspulse-bench "
EMAIL_DOMAIN = "bench.opspulse.localhost"


# One scratch database per benchmark process, so two benchmarks can run side by side;
# a database left by a process that died is dropped by the next run.
SCRATCH_PREFIX = "opspulse_bench_"
SCRATCH_DB = f"{SCRATCH_PREFIX}{os.getpid()}"
# What a process started without DATABASE_URL uses (read before any --scratch-db switch).
_INHERITED_DATABASE_URL = os.environ.get("DATABASE_URL")


def use_scratch_database() -> str:
    """Point this process (and the servers it starts) at a new, migrated database.

    Same PostgreSQL server as the development database, but nothing else uses it: no
    other worker (a running `make demo`, say) takes the benchmark's jobs. Call before
    setup_django(); drop_scratch_database() removes it.
    """
    import psycopg

    base = os.environ.get("DATABASE_URL")
    if base:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(base)
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        url = urlunsplit(parts._replace(path=f"/{SCRATCH_DB}"))
    else:
        from opspulse.lib import embedded_postgres

        params = embedded_postgres.ensure_running(Path(os.environ.get("OPSPULSE_VAR_DIR", ROOT / "var")))
        admin_url = embedded_postgres.url_from_params(params, "postgres")
        url = embedded_postgres.url_from_params(params, SCRATCH_DB)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [SCRATCH_PREFIX + "%"])]
        for name in names:
            pid = name.removeprefix(SCRATCH_PREFIX)
            if name == SCRATCH_DB or not (pid.isdigit() and _alive(int(pid))):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{SCRATCH_DB}"')
    os.environ["DATABASE_URL"] = url
    log(f"scratch database {SCRATCH_DB}: migrating")
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True,
                   env=dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings"))
    return admin_url


def drop_scratch_database(admin_url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)')
    log(f"dropped the scratch database {SCRATCH_DB}")


def setup_django() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import logging

    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)


def stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so a killed benchmark still cleans up."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------
# Statistics and reports


def latency_summary(values_ms: Sequence[float]) -> dict[str, float]:
    if not values_ms:
        return {"count": 0}
    ordered = sorted(values_ms)

    def at(fraction: float) -> float:
        return round(ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)], 2)

    return {
        "count": len(ordered),
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": round(ordered[-1], 2),
        "mean": round(sum(ordered) / len(ordered), 2),
    }


def print_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    lines = [title, "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(value.ljust(w) for value, w in zip(row, widths, strict=True)))
    text = "\n".join(lines)
    print("\n" + text + "\n", flush=True)
    return text


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def python_speed_ms() -> float:
    """Milliseconds one core takes for a fixed pure-Python loop (best of five).

    The same machine kind gives different cores from one boot to the next; this figure
    tells runs on a slower core from a slower OpsPulse. About 90 ms on a fast desktop
    core, 200–300 ms on the 2 GHz cores seen here.
    """
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def machine() -> dict[str, Any]:
    import psutil

    speed = python_speed_ms()
    log(f"machine: {cpu_model()}, {os.cpu_count()} cores, Python reference loop {speed} ms")
    return {
        "cpu": cpu_model(),
        "python_loop_ms": speed,
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def code_version() -> dict[str, Any]:
    """The commit measured and the files changed on top of it (read-only git calls)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    status = git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "--short", "HEAD").strip(),
            "modified": [line[3:] for line in status.splitlines() if line.strip()]}


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    log(f"wrote {path.relative_to(ROOT)}")
    return path


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------
# Database


def database_url() -> str:
    from django.conf import settings

    return settings.DATABASE_URL


def libpq_params() -> dict[str, str]:
    from django.db import connection

    s = connection.settings_dict
    params = {"host": s["HOST"] or "", "user": s["USER"] or "", "dbname": s["NAME"]}
    if s.get("PORT"):
        params["port"] = str(s["PORT"])
    if s.get("PASSWORD"):
        params["password"] = s["PASSWORD"]
    return params


def pg_bin(name: str) -> str:
    """A PostgreSQL client program: pgserver's bundled one, else one on PATH."""
    import pgserver

    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
    if bundled.exists():
        return str(bundled)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found (neither in pgserver's pginstall/bin nor on PATH)")
    return found


def retry_db(action: Callable[[], Any], *, attempts: int = 20, what: str = "database call") -> Any:
    """Run `action`, retrying while PostgreSQL is away (it may be restarted under us)."""
    from django.db import OperationalError, InterfaceError, close_old_connections, connection

    for attempt in range(attempts):
        try:
            return action()
        except (OperationalError, InterfaceError) as exc:
            if attempt == attempts - 1:
                raise
            log(f"{what}: {str(exc).strip().splitlines()[0][:100]}; retrying")
            with contextlib.suppress(Exception):
                connection.close()
            close_old_connections()
            time.sleep(1.5)
    return None


# ---------------------------------------------------------------------------
# Bench tenants


@dataclass
class Tenant:
    """Accounts, users and stores of one benchmark run, and their cleanup."""

    script: str
    run: int = field(default_factory=lambda: int(time.time() * 1000) % 10**9)
    account_ids: list[int] = field(default_factory=list)
    user_ids: list[int] = field(default_factory=list)
    stores: list[Any] = field(default_factory=list)
    secrets: dict[int, str] = field(default_factory=dict)
    session_keys: list[str] = field(default_factory=list)

    @property
    def account_name(self) -> str:
        return f"{ACCOUNT_PREFIX}{self.script} pid={os.getpid()} run={self.run}"

    @property
    def store_ids(self) -> list[int]:
        return [store.pk for store in self.stores]

    def create(self, *, stores: int, stores_per_account: int, timezone: str = "UTC", currency: str = "USD") -> None:
        """Create `stores` stores, alternately Shopify and WooCommerce, each account with one owner."""
        from django.db import transaction

        from opspulse.accounts.models import Account, Membership, Role, User
        from opspulse.stores.models import Integration, Store

        with transaction.atomic():
            for index in range(stores):
                if index % stores_per_account == 0:
                    number = index // stores_per_account
                    account = Account.objects.create(name=self.account_name)
                    user = User.objects.create_user(f"bench{self.run}-{number}@{EMAIL_DOMAIN}", None)
                    Membership.objects.create(account=account, user=user, role=Role.OWNER)
                    self.account_ids.append(account.pk)
                    self.user_ids.append(user.pk)
                shopify = index % 2 == 0
                store = Store.objects.create(
                    account=account,
                    name=f"Bench {index}",
                    platform="shopify" if shopify else "woocommerce",
                    domain=f"bench{self.run}-{index}." + ("myshopify.com" if shopify else "example.com"),
                    timezone=timezone,
                    currency=currency,
                )
                secret = uuid.uuid4().hex
                integration = Integration(store=store, type=store.platform)
                integration.webhook_secret = secret
                integration.save()
                self.stores.append(store)
                self.secrets[store.pk] = secret

    def login_cookie(self, user_id: int) -> str:
        """A session cookie for the user, made the way a sign-in makes one."""
        from django.test import Client

        from opspulse.accounts.models import User

        client = Client()
        client.force_login(User.objects.get(pk=user_id))
        key = client.cookies["sessionid"].value
        self.session_keys.append(key)
        return key

    def targets(self) -> list[Any]:
        from opspulse.sim.demo import demo_catalog
        from opspulse.sim.simulator import StoreTarget

        return [
            StoreTarget(
                platform=store.platform,
                domain=store.domain,
                webhook_secret=self.secrets[store.pk],
                timezone=store.timezone,
                currency=store.currency,
                catalog=tuple(demo_catalog(store)),
                ingest_token=store.ingest_token,
                name=store.name,
            )
            for store in self.stores
        ]

    def delete_deliveries(self, extra_where: str = "", params: Sequence[Any] = ()) -> int:
        from django.db import connection

        def run() -> int:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM ingest_webhook_delivery WHERE store_id = ANY(%s) {extra_where}",
                    [self.store_ids, *params],
                )
                return cursor.rowcount

        return retry_db(run, what="deleting bench deliveries")

    def delete_jobs(self) -> None:
        from django.db import connection

        from opspulse.ingest.queue import DRAIN_TASK

        # Drain jobs serve lanes shared with every other store; one that finds nothing
        # ends at once, so only jobs waiting for no delivery at all are removed.
        def run() -> None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM procrastinate_jobs WHERE task_name = %s AND status = 'todo'"
                    " AND NOT EXISTS (SELECT 1 FROM ingest_webhook_delivery WHERE status = 'pending')",
                    [DRAIN_TASK],
                )

        retry_db(run, what="deleting bench jobs")

    def cleanup(self) -> None:
        if not self.account_ids and not self.user_ids:
            return
        log(f"deleting bench data of run {self.run} ({len(self.stores)} stores)")
        _delete_tenant(self.account_ids, self.user_ids, self.store_ids, self.session_keys)
        self.account_ids, self.user_ids, self.stores, self.session_keys = [], [], [], []


def _delete_tenant(account_ids: list[int], user_ids: list[int], store_ids: list[int], session_keys: list[str]) -> None:
    from django.contrib.sessions.models import Session
    from django.db import connection, transaction

    from opspulse.accounts.models import Account, User

    from opspulse.ingest.queue import DRAIN_TASK

    def running_jobs() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status = 'doing'",
                           [DRAIN_TASK])
            return cursor.fetchone()[0]

    # A drain job still running (another worker's) would trip over the deletions.
    deadline = time.monotonic() + 30
    while retry_db(running_jobs, what="looking for running jobs") and time.monotonic() < deadline:
        time.sleep(0.5)

    def run() -> None:
        with connection.cursor() as cursor:
            # Deliveries are by far the largest part: delete them in one statement first.
            cursor.execute("DELETE FROM ingest_webhook_delivery WHERE store_id = ANY(%s)", [store_ids])
            # A drain job left `doing` by a stopped bench worker would hold its lane.
            cursor.execute(
                "DELETE FROM procrastinate_jobs j WHERE task_name = %s AND status = 'doing' AND NOT EXISTS"
                " (SELECT 1 FROM procrastinate_workers w WHERE w.id = j.worker_id"
                "  AND w.last_heartbeat > now() - interval '30 seconds')", [DRAIN_TASK]
            )
        with transaction.atomic():
            Account.objects.filter(pk__in=account_ids).delete()
            User.objects.filter(pk__in=user_ids).delete()
            Session.objects.filter(session_key__in=session_keys).delete()

    retry_db(run, what="deleting bench data")


def delete_stale_tenants() -> None:
    """Delete bench data left by runs whose process is gone (killed before cleaning up)."""
    from opspulse.accounts.models import Account, User
    from opspulse.stores.models import Store

    pattern = re.compile(r"pid=(\d+) run=(\d+)")
    stale: dict[int, list[int]] = {}
    for account in Account.objects.filter(name__startswith=ACCOUNT_PREFIX):
        match = pattern.search(account.name)
        if match is None:
            continue
        pid, run = int(match[1]), int(match[2])
        if pid != os.getpid() and _alive(pid):
            continue
        stale.setdefault(run, []).append(account.pk)
    for run, account_ids in stale.items():
        store_ids = list(Store.objects.filter(account_id__in=account_ids).values_list("pk", flat=True))
        user_ids = list(User.objects.filter(email__startswith=f"bench{run}-", email__endswith=f"@{EMAIL_DOMAIN}").values_list("pk", flat=True))
        log(f"deleting bench data left by an earlier run ({run}: {len(store_ids)} stores)")
        _delete_tenant(account_ids, user_ids, store_ids, [])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(*, debug: bool = False, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url(),
        DEBUG="true" if debug else "false",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Service:
    """A long-running child process (web server, worker) with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def pids(self) -> set[int]:
        import psutil

        try:
            proc = psutil.Process(self.pid)
            return {self.pid, *(child.pid for child in proc.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_web(name: str, app: str, *, port: int, workers: int, env: dict[str, str], logdir: Path,
              ready_path: str = "/login/", app_dir: str | None = None, deflate: bool = False) -> Service:
    import httpx

    from opspulse.lib.serve import uvicorn_command

    args = uvicorn_command(host="127.0.0.1", port=port, workers=workers, app=app)
    if deflate:
        args[args.index("--ws-per-message-deflate") + 1] = "true"
    if app_dir:
        args += ["--app-dir", app_dir]
    service = Service(name, args, env, logdir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not service.running():
            raise RuntimeError(f"{name} exited:\n{service.tail()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        service.stop()
        raise RuntimeError(f"{name} did not start:\n{service.tail()}")
    # Each of the workers has to have started too; give the slower one a moment.
    time.sleep(1.0)
    return service


def start_worker(name: str, *, concurrency: int, env: dict[str, str], logdir: Path, nice: int = 0) -> Service:
    args = [PYTHON, "manage.py", "worker", "--concurrency", str(concurrency)]
    if nice:
        args = ["nice", "-n", str(nice), *args]
    return Service(name, args, env, logdir)


def _worker_processes(mine: Iterable[int]) -> list[Any]:
    import psutil

    mine = set(mine)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
        cmd = proc.info["cmdline"] or []
        is_worker = "worker" in cmd and ("procrastinate" in cmd or "manage.py" in cmd)
        if proc.info["pid"] in mine or not is_worker:
            continue
        # Only workers on this benchmark's database take its jobs.
        env = proc.info["environ"] or {}
        if (env.get("DATABASE_URL") or _default_database_url()) != database_url():
            continue
        found.append(proc)
    return found


@functools.cache
def _default_database_url() -> str:
    if _INHERITED_DATABASE_URL:
        return _INHERITED_DATABASE_URL
    from opspulse.lib import embedded_postgres

    params = embedded_postgres.ensure_running(Path(os.environ.get("OPSPULSE_VAR_DIR", ROOT / "var")))
    return embedded_postgres.url_from_params(params)


def foreign_workers(mine: Iterable[int]) -> list[str]:
    """Other procrastinate workers on the benchmark's database: they take jobs from its queue."""
    return [f"pid {p.pid}: {' '.join(p.info['cmdline'])[:120]}" for p in _worker_processes(mine)]


def warn_foreign_workers() -> list[str]:
    found = foreign_workers(set())
    if found:
        log("WARNING: other procrastinate workers use this database. They take the benchmark's drain jobs")
        log("(and CPU), possibly with older code; stop them, or run with --scratch-db, for clean figures:")
        for line in found:
            log(f"  {line}")
    return found


def foreign_worker_pids(mine: Iterable[int]) -> list[int]:
    import psutil

    pids = []
    for proc in _worker_processes(mine):
        pids.append(proc.pid)
        with contextlib.suppress(psutil.Error):
            pids.extend(child.pid for child in proc.children(recursive=True))
    return pids


_postmaster: int | None = None


def postgres_pids() -> set[int]:
    """The benchmark's PostgreSQL server: its postmaster and every backend."""
    import psutil

    global _postmaster
    if _postmaster is None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                _postmaster = psutil.Process(cursor.fetchone()[0]).ppid()
        except Exception:  # noqa: BLE001 - a remote server: count every local postgres
            _postmaster = 0
    if _postmaster:
        with contextlib.suppress(psutil.Error):
            server = psutil.Process(_postmaster)
            return {server.pid, *(child.pid for child in server.children())}
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"}


def wait4(popen: subprocess.Popen, timeout: float | None = None) -> tuple[int, float]:
    """Wait for a child; return (exit code, CPU seconds it used, children included)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(popen.pid, os.WNOHANG)
        if pid:
            popen.returncode = os.waitstatus_to_exitcode(status)
            return popen.returncode, usage.ru_utime + usage.ru_stime
        if deadline is not None and time.monotonic() > deadline:
            popen.kill()
            deadline = None
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# CPU accounting: where the machine's cores went during a phase


class CpuMeter:
    """Cores used per group of processes between start() and stop().

    Groups are callables returning pids. A background thread re-reads every process
    twice a second, so processes that start or end mid-phase (pgbench's backends, for
    one) count for the time they were seen. PostgreSQL is the benchmark's server (all
    its backends, whoever's); procrastinate workers not started here are counted apart,
    since they take the benchmark's jobs; "other" is whatever else the machine did.
    Load generators that have exited are added at stop() from their wait4() usage.
    """

    def __init__(self, groups: dict[str, Callable[[], Iterable[int]]]) -> None:
        self.groups = groups
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._busy0 = 0.0
        self._t0 = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        postgres_pids()  # finds the server on this thread's database connection

    @staticmethod
    def busy_seconds() -> float:
        import psutil

        t = psutil.cpu_times()
        return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)

    def _sample(self, first: bool) -> None:
        import psutil

        groups = {name: set(pids()) for name, pids in self.groups.items()}
        mine = set().union(*groups.values()) if groups else set()
        groups["postgres"] = postgres_pids()
        groups["other workers on this DB (not started here)"] = set(foreign_worker_pids(mine))
        groups["bench (this process)"] = {os.getpid()}
        for name, pids in groups.items():
            for pid in pids:
                try:
                    t = psutil.Process(pid).cpu_times()
                except psutil.Error:
                    continue
                key = (name, pid)
                used = t.user + t.system
                if key not in self._first:
                    # A process first seen after start() counts from its own start.
                    self._first[key] = used if first else 0.0
                self._last[key] = used

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._sample(first=False)

    def start(self) -> None:
        self._first, self._last = {}, {}
        self._sample(first=True)
        self._busy0 = self.busy_seconds()
        self._t0 = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self, extra_cpu_seconds: dict[str, float] | None = None) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample(first=False)
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        busy = self.busy_seconds() - self._busy0
        used: dict[str, float] = {}
        for (name, pid), last in self._last.items():
            used[name] = used.get(name, 0.0) + last - self._first[(name, pid)]
        for name, seconds in (extra_cpu_seconds or {}).items():
            used[name] = used.get(name, 0.0) + seconds
        cores = {name: round(seconds / elapsed, 2) for name, seconds in used.items()}
        cores["other (not this benchmark)"] = round(max(busy - sum(used.values()), 0.0) / elapsed, 2)
        cores["total busy"] = round(busy / elapsed, 2)
        return cores


def machine_busy(seconds: float = 2.0) -> float:
    """Cores busy over the next `seconds`."""
    before = CpuMeter.busy_seconds()
    time.sleep(seconds)
    return (CpuMeter.busy_seconds() - before) / seconds


def wait_for_quiet(max_wait: float, threshold: float = 0.5) -> dict[str, float]:
    """Wait up to `max_wait` s for the machine to be nearly idle before a measurement.

    Other work on the machine (tests, a running demo) takes cores from the benchmark;
    the busy level found is recorded with each phase.
    """
    started = time.monotonic()
    busy = machine_busy()
    announced = False
    while busy > threshold and time.monotonic() - started < max_wait:
        if not announced:
            log(f"  machine busy ({busy:.2f} cores) before measuring; waiting up to {max_wait:.0f}s for it to settle")
            announced = True
        busy = machine_busy(3.0)
    return {"busy_cores_before": round(busy, 2), "waited_s": round(time.monotonic() - started, 1)}


def cpu_line(cores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in cores.items())


def tear_down(*, popens: Iterable[subprocess.Popen] = (), services: Iterable[Service] = (), tenant: Tenant,
              scratch: str | None) -> None:
    """Stop what a benchmark started, delete its tenant and drop its scratch database."""
    for popen in popens:
        if popen.poll() is None:
            popen.kill()
            popen.wait()
    for service in list(services):
        service.stop()
    tenant.cleanup()
    if scratch:
        drop_scratch_database(scratch)


def finish(name: str, result: dict[str, Any]) -> None:
    """Stamp the end of the run and the machine's load on `result`, and write it."""
    result["finished_at"] = now_iso()
    stamp_machine_at_end(result)
    write_result(name, result)


def stamp_machine_at_end(result: dict[str, Any]) -> None:
    """The load, and the reference loop again: this machine's speed drifts within minutes
    (seen: 38 to 68 ms), so a run whose two loops differ much measured a moving target."""
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"]["python_loop_ms_at_end"] = python_speed_ms()
    log(f"Python reference loop at the end: {result['machine']['python_loop_ms_at_end']} ms "
        f"(at the start: {result['machine'].get('python_loop_ms')} ms)")


@contextlib.contextmanager
def work_dir(name: str):
    """A fresh directory under the system temp dir for request files and process logs.

    The request files (large) are deleted at the end; the logs stay for a look after
    the run and are replaced by the next run of the same benchmark.
    """
    path = Path(tempfile.gettempdir()) / f"opspulse-bench-{name}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        for pattern in ("*.bin", "*.json"):
            for file in path.glob(pattern):
                file.unlink(missing_ok=True)
        for sub in path.iterdir():
            if sub.is_dir():
                shutil.rmtree(sub, ignore_errors=True)
        log(f"process logs: {path}")
