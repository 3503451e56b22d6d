"""Webhook to dashboard, end to end, with many dashboards open.

K dashboard WebSockets (signed-in sessions of the bench stores' owners, made here with
Django's test Client.force_login) are spread over S stores and held by a few client
processes (bench/wsclients.py). A separate sender process (bench/loadgen.py) posts
signed orders/create (Shopify) and order.created (WooCommerce) webhooks at a fixed
rate, round-robin over the stores, to uvicorn (config.asgi:application) with a worker
running. For each order and each dashboard of its store, the latency is the time from
sending the webhook to the socket receiving a frame that contains the order's row
(`data-order-number="#N"`); all processes read the same monotonic clock. Also reported:
bytes and frames received per order update per dashboard, on the wire (compressed, as
negotiated with permessage-deflate like a browser) and as payload.

    .venv/bin/python bench/e2e.py                      # 200 dashboards, 20 stores, 50/s, 20 s
    .venv/bin/python bench/e2e.py --clients 2000 --stores 100 --rate 300 --duration 60   # the target
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import database, machine, processes, reports, request_files, runtime  # noqa: E402
from support.load_generation import run_loadgen  # noqa: E402
from support.machine import CpuMeter  # noqa: E402
from support.runs import BenchRun  # noqa: E402
from support.runtime import BENCH, PYTHON, log  # noqa: E402

TARGET_CLIENTS, TARGET_RATE, TARGET_P50_MS, TARGET_P99_MS = 2000, 300, 50, 250


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200, help="dashboard WebSockets (K)")
    parser.add_argument("--stores", type=int, default=20, help="stores the dashboards are spread over (S)")
    parser.add_argument("--rate", type=float, default=50, help="order webhooks per second, all stores together")
    parser.add_argument("--duration", type=float, default=20, help="seconds of sending")
    parser.add_argument("--client-procs", type=int, default=0, help="client processes (default: 1 per 500 sockets, at least 2)")
    parser.add_argument("--connect-rate", type=float, default=100, help="new sockets per second while connecting")
    parser.add_argument("--grace", type=float, default=10, help="seconds to keep listening after the last webhook")
    parser.add_argument("--web-workers", type=int, default=2, help="uvicorn workers serving the dashboards")
    parser.add_argument("--ingest-workers", type=int, default=0,
                        help="uvicorn workers of a second server that takes the webhooks (0: the dashboards' server)")
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--quiet-wait", type=float, default=30,
                        help="seconds to wait, before measuring, for other work on the machine to settle")
    parser.add_argument("--debug", action="store_true", help="run the servers with DEBUG=true (default false)")
    parser.add_argument("--worker-nice", type=int, default=0,
                        help="run the worker under `nice -n N` (CPU priority below the web processes)")
    parser.add_argument("--result-name", default="e2e", help="write bench/results/<name>.json")
    parser.add_argument("--scratch-db", action="store_true",
                        help="use a new database on the same PostgreSQL server, dropped at the end, instead of the "
                             "development database (no other worker on the dev database can take the jobs)")
    args = parser.parse_args()
    if not 1 <= args.stores <= args.clients <= 10000:
        parser.error("need 1 <= --stores <= --clients <= 10000")
    if not 0 < args.rate <= 5000 or not 0 < args.duration <= 600:
        parser.error("--rate must be in (0, 5000] and --duration in (0, 600]")
    if not args.client_procs:
        args.client_procs = max(2, -(-args.clients // 500))
    return args


class E2EBench(BenchRun):
    name = "e2e"

    def measure(self, tmp: Path) -> dict[str, Any]:
        from django.db import connection

        a = self.args
        self.tenant.create(stores=a.stores, stores_per_account=1)
        cookies = [self.tenant.login_cookie(user_id) for user_id in self.tenant.user_ids]
        targets = self.tenant.targets()
        log(f"created {a.stores} stores, {len(cookies)} signed-in owners (run {self.tenant.run})")

        # Orders: file k holds orders k, k+files, … so loadgen process k sends them in order.
        files = 1 if a.rate <= 400 else 2
        count = int(a.rate * a.duration) + 10
        first_number = 10001
        now = datetime.now(UTC)
        order_of: list[list[tuple[int, str, str]]] = [[] for _ in range(files)]
        outs = [open(tmp / f"orders-{k}.bin", "wb") for k in range(files)]
        for index, (store_index, number, key, raw) in enumerate(request_files.order_creates(
                targets, count=count, first_number=first_number,
                created_at=lambda i: now + timedelta(seconds=i / a.rate))):
            request_files.write_record(outs[index % files], raw)
            order_of[index % files].append((store_index, number, key))
        for out in outs:
            out.close()
        connection.close()

        env = processes.service_env(debug=a.debug)
        worker = processes.start_worker("worker", concurrency=a.worker_concurrency, env=env, logdir=tmp, nice=a.worker_nice)
        self.services.append(worker)
        port = processes.free_port()
        web = processes.start_web("web", "config.asgi:application", port=port, workers=a.web_workers, env=env, logdir=tmp)
        self.services.append(web)
        ingest_port, web_pids = port, web.pids
        if a.ingest_workers:
            # Webhooks to processes of their own (a proxy routing /webhooks/ would do this).
            ingest_port = processes.free_port()
            ingest = processes.start_web("ingest", "config.asgi:application", port=ingest_port,
                                         workers=a.ingest_workers, env=env, logdir=tmp)
            self.services.append(ingest)

            def web_pids() -> list[int]:
                return [*web.pids(), *ingest.pids()]
        log(f"OpsPulse on port {port} ({a.web_workers} web workers"
            f"{f', webhooks on port {ingest_port} ({a.ingest_workers} workers)' if a.ingest_workers else ''}, "
            f"worker --concurrency {a.worker_concurrency})")

        # Dashboards: socket i watches store i % S, signed in as that store's owner.
        stores = self.tenant.stores
        per_proc: list[list[dict[str, Any]]] = [[] for _ in range(a.client_procs)]
        for i in range(a.clients):
            store_index = i % a.stores
            per_proc[i % a.client_procs].append({"index": i, "store": store_index,
                                                 "public_id": str(stores[store_index].public_id),
                                                 "cookie": cookies[store_index]})
        log(f"opening {a.clients} dashboards from {a.client_procs} processes at {a.connect_rate:g}/s")
        connect_started = time.monotonic()
        meter_connect = CpuMeter({"web": web_pids, "worker": worker.pids,
                                  "clients": lambda: [p.pid for p in self.clients]})
        meter_connect.start()
        outputs = []
        for k, sockets in enumerate(per_proc):
            job = {"port": port, "sockets": sockets, "connect_rate": a.connect_rate / a.client_procs,
                   "out": str(tmp / f"clients-{k}.json")}
            (tmp / f"clients-{k}-job.json").write_text(json.dumps(job))
            outputs.append(Path(job["out"]))
            self.clients.append(subprocess.Popen([PYTHON, str(BENCH / "wsclients.py"), str(tmp / f"clients-{k}-job.json")],
                                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        opened = failed = 0
        for popen in self.clients:
            line = popen.stdout.readline().split()
            if not line or line[0] != "READY":
                raise RuntimeError(f"a client process failed to start:\n{web.tail()}")
            opened += int(line[1])
            failed += int(line[2])
        connect_seconds = time.monotonic() - connect_started
        connect_cores = meter_connect.stop()
        log(f"{opened} dashboards open ({failed} failed) in {connect_seconds:.1f}s; "
            f"cores while connecting: {machine.cpu_line(connect_cores)}")
        if opened == 0:
            raise RuntimeError(f"no dashboard could connect:\n{web.tail()}")

        time.sleep(2)
        quiet = machine.wait_for_quiet(a.quiet_wait)
        log(f"sending {a.rate:g} orders/s for {a.duration:g}s")
        meter = CpuMeter({"web": web_pids, "worker": worker.pids, "clients": lambda: [p.pid for p in self.clients]})
        meter.start()
        window_from = time.monotonic()
        load = run_loadgen(port=ingest_port, prefix=str(tmp / "orders"), files=files, rate=a.rate, duration=a.duration,
                           record_sends=True, tmp=tmp, name="orders")
        sender_cpu = load.pop("generator_cpu_s")
        log(f"  webhooks: {load['ok']:,} accepted of {load['sent']:,}, ack p50 {load['latency_ms'].get('p50')} "
            f"p99 {load['latency_ms'].get('p99')} ms; listening {a.grace:g}s more")
        time.sleep(a.grace)
        window_to = time.monotonic()
        cores = meter.stop({"sender": sender_cpu})
        for popen in self.clients:
            popen.stdin.write(f"STOP {window_from} {window_to}\n")
            popen.stdin.flush()
        for popen in self.clients:
            popen.wait(timeout=120)
        sockets = []
        for out in outputs:
            sockets.extend(json.loads(out.read_text()))
        stages = self.delivery_times()
        return self.analyse(load, order_of, sockets, cores, connect_seconds, connect_cores, quiet,
                            window_to - window_from, opened, failed, stages)

    def delivery_times(self) -> dict[str, tuple[float, float | None]]:
        """{delivery key: (received_at, processed_at)} on this process's monotonic clock."""
        from django.db import connection

        offset = time.time() - time.monotonic()

        def run() -> dict[str, tuple[float, float | None]]:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT delivery_key, extract(epoch FROM received_at), extract(epoch FROM processed_at)"
                    " FROM ingest_webhook_delivery WHERE store_id = ANY(%s)", [self.tenant.store_ids])
                return {key: (float(received) - offset, float(processed) - offset if processed else None)
                        for key, received, processed in cursor.fetchall()}

        return database.retry_db(run, what="reading delivery times")

    def analyse(self, load, order_of, sockets, cores, connect_seconds, connect_cores, quiet, window, opened,
                failed, stages) -> dict[str, Any]:
        a = self.args
        sent: dict[tuple[int, str], float] = {}
        to_stored, to_processing = [], []
        for k, index, sent_at, _acked, status in load.pop("sends"):
            if status == 200:
                store_index, number, key = order_of[k][index]
                sent[(store_index, number)] = sent_at
                received, processed = stages.get(key, (None, None))
                if received is not None:
                    to_stored.append((received - sent_at) * 1000)
                if processed is not None:
                    to_processing.append((processed - sent_at) * 1000)

        live = [s for s in sockets if s["closed"] is None]
        latencies, missed, per_order = reports.orders_on_screens(live, sent)
        expected = len(latencies) + missed
        connect = [s["connect_s"] * 1000 for s in sockets if s["connect_s"] is not None]
        lat = reports.latency_summary(latencies)
        summary = {
            "dashboards_open": opened,
            "dashboards_failed": failed,
            "dashboards_closed_during_run": sum(1 for s in sockets if s["closed"] is not None),
            "orders_accepted": len(sent),
            "webhook_ack_ms": load["latency_ms"],
            "webhook_status": load["status"],
            "deliveries_expected": expected,
            "deliveries_seen": len(latencies),
            "deliveries_missed": missed,
            "webhook_to_screen_ms": lat,
            # From the webhook's send to the delivery row's received_at (its insert) and
            # processed_at (the start of the worker batch that took it); the screen comes
            # after that batch commits, its NOTIFY fans out and the dashboard re-renders.
            "webhook_to_stored_ms": reports.latency_summary(to_stored),
            "webhook_to_batch_start_ms": reports.latency_summary(to_processing),
            "per_order_update_per_dashboard": per_order,
            "window_s": round(window, 1),
            "wire_mbytes_per_s_total": round(sum(s["wire_bytes"] for s in live) / window / 1e6, 2),
            "payload_mbytes_per_s_total": round(sum(s["payload_bytes"] for s in live) / window / 1e6, 2),
            "connect_first_frame_ms": reports.latency_summary(connect),
            "connect_phase_s": round(connect_seconds, 1),
            "connect_cpu_cores": connect_cores,
            "cpu_cores": cores,
            "machine_before": quiet,
        }
        rows = [
            ["dashboards (open / asked)", f"{opened:,} / {a.clients:,}"],
            ["stores", a.stores],
            ["orders sent at", f"{a.rate:g}/s for {a.duration:g}s ({len(sent):,} accepted)"],
            ["webhook ack p50 / p99 (ms)", f"{load['latency_ms'].get('p50')} / {load['latency_ms'].get('p99')}"],
            ["order rows due on screens", f"{expected:,}"],
            ["seen / missed", f"{len(latencies):,} / {missed:,}"],
            ["webhook → row stored p50 / p99 (ms)",
             f"{summary['webhook_to_stored_ms'].get('p50')} / {summary['webhook_to_stored_ms'].get('p99')}"],
            ["webhook → worker batch start p50 / p99 (ms)",
             f"{summary['webhook_to_batch_start_ms'].get('p50')} / {summary['webhook_to_batch_start_ms'].get('p99')}"],
            ["webhook → screen p50 (ms)", lat.get("p50")],
            ["webhook → screen p95 (ms)", lat.get("p95")],
            ["webhook → screen p99 (ms)", lat.get("p99")],
            ["webhook → screen max (ms)", lat.get("max")],
            ["wire bytes / order / dashboard", summary["per_order_update_per_dashboard"]["wire_bytes"]],
            ["payload bytes / order / dashboard", summary["per_order_update_per_dashboard"]["payload_bytes"]],
            ["frames / order / dashboard", summary["per_order_update_per_dashboard"]["frames"]],
            ["wire MB/s, all dashboards", summary["wire_mbytes_per_s_total"]],
            ["first frame after connect p50 / p99 (ms)",
             f"{summary['connect_first_frame_ms'].get('p50')} / {summary['connect_first_frame_ms'].get('p99')}"],
            ["cores while sending", machine.cpu_line(cores)],
        ]
        table = reports.print_table("End to end: webhook → dashboard", ["measure", "value"], rows)
        full_size = a.clients >= TARGET_CLIENTS and a.rate >= TARGET_RATE
        targets = [
            {"target": f"p50 < {TARGET_P50_MS} ms", "measured": lat.get("p50"),
             "met": bool(lat.get("p50") is not None and lat["p50"] < TARGET_P50_MS and not missed)},
            {"target": f"p99 < {TARGET_P99_MS} ms", "measured": lat.get("p99"),
             "met": bool(lat.get("p99") is not None and lat["p99"] < TARGET_P99_MS and not missed)},
        ]
        note = None if full_size else (f"scaled-down run: the targets are for {TARGET_CLIENTS:,} dashboards and "
                                       f"{TARGET_RATE} webhooks/s")
        target_table = reports.print_table(
            "End-to-end targets" + (f" ({note})" if note else ""), ["target", "measured", "met"],
            [[t["target"], t["measured"], "yes" if t["met"] else "NO"] for t in targets])
        return {"summary": summary, "targets": targets, "targets_note": note, "table": table,
                "targets_table": target_table}


def main() -> None:
    runtime.stop_on_sigterm()
    E2EBench(parse_args()).run()


if __name__ == "__main__":
    main()
