"""CPU accounting: where the machine's cores went during a phase, and how fast they are.

Django, its models and the packages some benchmarks never need are imported inside the
functions that use them: a benchmark imports this module before django.setup().
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from support.processes import foreign_worker_pids, postgres_pids
from support.runtime import log


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
