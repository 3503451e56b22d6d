"""One benchmark run from start to result file, for the benchmarks that start servers and clients."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

from support.database import use_scratch_database
from support.machine import machine
from support.processes import Service, tear_down, warn_foreign_workers, work_dir
from support.reports import code_version, finish, now_iso
from support.runtime import setup_django
from support.tenants import Tenant, delete_stale_tenants


class BenchRun:
    """A scratch database if asked, Django, a tenant of the run's own, a work directory, a result file.

    A benchmark names itself (`name`) and measures in measure(tmp); the services and client
    processes it starts go in `services` and `clients`, which run() stops at the end,
    whatever happened.
    """

    name: str

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tenant = Tenant(script=self.name)
        self.services: list[Service] = []
        self.clients: list[subprocess.Popen] = []

    def measure(self, tmp: Path) -> dict[str, Any]:
        raise NotImplementedError

    def run(self) -> None:
        a = self.args
        scratch = use_scratch_database() if a.scratch_db else None
        setup_django()
        delete_stale_tenants()
        foreign = warn_foreign_workers()
        result: dict[str, Any] = {"benchmark": self.name, "started_at": now_iso(), "machine": machine(),
                                  "config": dict(vars(a)), "foreign_workers": foreign, "code": code_version()}
        try:
            with work_dir(self.name) as tmp:
                result.update(self.measure(tmp))
        finally:
            tear_down(popens=self.clients, services=self.services, tenant=self.tenant, scratch=scratch)
        finish(a.result_name, result)
