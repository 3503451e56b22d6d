"""Peak day: 1,000 stores through a Black Friday traffic shape, on one machine.

S stores (default 1,000, half Shopify, half WooCommerce) send the simulator's mixed
traffic (new orders and their updates, stock changes, carts) through the real ingest
endpoint, to uvicorn (config.asgi:application) with a procrastinate worker, for
--duration seconds. The offered rate follows a Black Friday shape: a steady base with
flash-sale bursts (--shape, "from second:rate" pairs). D dashboards (signed-in owners,
one store each) stay open all along (bench/wsclients.py).

Measured, all over time:
  * offered and accepted webhooks per second (bench/loadgen.py, open loop),
  * the worker's throughput (deliveries processed per second, from processed_at),
  * the queue backlog (deliveries received and not yet processed, from the delivery
    rows' received_at and processed_at, so the measuring does not load the database),
  * webhook → dashboard latency of every new order of a watched store, per 5-second
    window of sending.
The backlog must stay bounded and be back to its base level within a minute after
each burst. Writes bench/results/peak.json and bench/results/peak.png (the three
series on one time axis).

    .venv/bin/python bench/peak.py --scratch-db                       # 1,000 stores, 10 minutes
    .venv/bin/python bench/peak.py --stores 100 --duration 120 --shape 0:100,30:400,60:100
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import database, machine, processes, reports, request_files, runtime  # noqa: E402
from support.load_generation import run_loadgen  # noqa: E402
from support.machine import CpuMeter  # noqa: E402
from support.runs import BenchRun  # noqa: E402
from support.runtime import BENCH, PYTHON, log  # noqa: E402

# Base traffic with a flash sale every 2.5 minutes: 30 s at four times the base rate.
DEFAULT_SHAPE = "0:150,60:600,90:150,210:600,240:150,360:600,390:150,510:600,540:150"
WINDOW_S = 5
DRAIN_TARGET_S = 60
ACK_P99_TARGET_MS = 1000


def parse_shape(text: str) -> list[tuple[float, float]]:
    shape = []
    for part in text.split(","):
        at, rate = part.split(":")
        shape.append((float(at), float(rate)))
    return sorted(shape)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=600, help="seconds of sending")
    parser.add_argument("--shape", default=DEFAULT_SHAPE, help="offered webhooks/s over time: 'from s:rate,...'")
    parser.add_argument("--dashboards", type=int, default=200, help="open dashboards, one per store, on the first stores")
    parser.add_argument("--tail", type=float, default=90, help="seconds to keep watching after the sending ends")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--worker-nice", type=int, default=0)
    parser.add_argument("--quiet-wait", type=float, default=30)
    parser.add_argument("--result-name", default="peak")
    parser.add_argument("--scratch-db", action="store_true", help="use a fresh database, dropped at the end")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    args.schedule = parse_shape(args.shape)
    if not 1 <= args.dashboards <= args.stores:
        parser.error("need 1 <= --dashboards <= --stores")
    return args


def expected_requests(schedule: list[tuple[float, float]], duration: float) -> int:
    total = 0.0
    for n, (at, rate) in enumerate(schedule):
        until = min(schedule[n + 1][0] if n + 1 < len(schedule) else duration, duration)
        total += max(until - at, 0) * rate
    return int(total)


def new_orders(paths: list[Path], store_of: dict[str, int]) -> list[dict[tuple[int, str], int]]:
    """Per request file: {(store index, "#number"): index in the file} of its new orders."""
    result = []
    for path in paths:
        found: dict[tuple[int, str], int] = {}
        for index, raw in enumerate(request_files.read_requests(path)):
            head, _, body = raw.partition(b"\r\n\r\n")
            text = head.decode("latin-1")
            if "orders/create" not in text and "order.created" not in text:
                continue
            lines = text.split("\r\n")
            path_line = lines[0].split()[1]
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            key = headers.get("X-Shopify-Shop-Domain") or path_line.rstrip("/").rsplit("/", 1)[-1]
            store = store_of.get(key)
            if store is None:
                continue
            payload = json.loads(body)
            number = payload.get("name") or f"#{payload.get('number')}"
            found.setdefault((store, number), index)
        result.append(found)
    return result


class PeakBench(BenchRun):
    name = "peak"

    def measure(self, tmp: Path) -> dict[str, Any]:
        from django.db import connection

        a = self.args
        started = time.monotonic()
        self.tenant.create(stores=a.stores, stores_per_account=1)
        log(f"created {a.stores} stores in {time.monotonic() - started:.0f}s")
        targets = self.tenant.targets()
        count = expected_requests(a.schedule, a.duration) + 100
        peak_rate = max(rate for _, rate in a.schedule)
        files = max(2, -(-int(peak_rate) // 400))
        log(f"building {count:,} signed requests in {files} files")
        mix = request_files.generate_mix(targets, files=files, per_file=-(-count // files), rate=sum(
            r for _, r in a.schedule) / len(a.schedule), directory=tmp, name="peak", clock_base=datetime.now(UTC))
        store_of = {}
        for index, store in enumerate(self.tenant.stores):
            store_of[store.domain if store.platform == "shopify" else store.ingest_token] = index
        # Files are built per store slice (file k: stores k, k+files, ...), in the order sent.
        orders_by_file = new_orders(mix["paths"], store_of)
        watched = set(range(a.dashboards))
        cookies = {}
        for store_index in watched:
            cookies[store_index] = self.tenant.login_cookie(self.tenant.user_ids[store_index])
        connection.close()

        env = processes.service_env(debug=a.debug)
        worker = processes.start_worker("worker", concurrency=a.worker_concurrency, env=env, logdir=tmp, nice=a.worker_nice)
        port = processes.free_port()
        web = processes.start_web("web", "config.asgi:application", port=port, workers=a.web_workers, env=env, logdir=tmp)
        self.services += [worker, web]

        per_proc: list[list[dict[str, Any]]] = [[], []]
        for n, store_index in enumerate(sorted(watched)):
            per_proc[n % 2].append({"index": n, "store": store_index,
                                    "public_id": str(self.tenant.stores[store_index].public_id),
                                    "cookie": cookies[store_index]})
        outputs = []
        for k, sockets in enumerate(per_proc):
            job = {"port": port, "sockets": sockets, "connect_rate": 50, "out": str(tmp / f"clients-{k}.json")}
            (tmp / f"clients-{k}-job.json").write_text(json.dumps(job))
            outputs.append(Path(job["out"]))
            self.clients.append(subprocess.Popen([PYTHON, str(BENCH / "wsclients.py"), str(tmp / f"clients-{k}-job.json")],
                                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        opened = 0
        for popen in self.clients:
            line = popen.stdout.readline().split()
            if not line or line[0] != "READY":
                raise RuntimeError(f"a client process failed to start:\n{web.tail()}")
            opened += int(line[1])
        log(f"{opened} dashboards open")
        quiet = machine.wait_for_quiet(a.quiet_wait)

        log(f"sending for {a.duration:g}s, shape {a.shape}")
        meter = CpuMeter({"web": web.pids, "worker": worker.pids, "clients": lambda: [p.pid for p in self.clients]})
        meter.start()
        clock_offset = time.time() - time.monotonic()
        window_from = time.monotonic()
        load = run_loadgen(port=port, prefix=mix["prefix"], files=files, rate=peak_rate, duration=a.duration,
                           record_sends=True, tmp=tmp, name="peak", schedule=a.schedule, max_conns=512)
        log(f"  webhooks: {load['ok']:,} accepted of {load['sent']:,}; watching the drain for {a.tail:g}s")
        time.sleep(a.tail)
        window_to = time.monotonic()
        cores = meter.stop({"sender": load.pop("generator_cpu_s")})
        for popen in self.clients:
            popen.stdin.write(f"STOP {window_from} {window_to}\n")
            popen.stdin.flush()
        for popen in self.clients:
            popen.wait(timeout=120)
        sockets = []
        for out in outputs:
            sockets.extend(json.loads(out.read_text()))
        return self.analyse(load, orders_by_file, sockets, cores, quiet, window_from, clock_offset, opened, mix, tmp)

    def delivery_series(self, start_epoch: float, seconds: int) -> tuple[list[int], list[int], list[int], dict]:
        """Per second from the start: received, processed, backlog at the end of the second."""
        from django.db import connection

        def run() -> tuple[list[tuple], list[tuple], dict]:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT floor(extract(epoch FROM received_at) - %s)::int, count(*)"
                    " FROM ingest_webhook_delivery WHERE store_id = ANY(%s) GROUP BY 1",
                    [start_epoch, self.tenant.store_ids])
                received = cursor.fetchall()
                cursor.execute(
                    "SELECT floor(extract(epoch FROM processed_at) - %s)::int, count(*)"
                    " FROM ingest_webhook_delivery WHERE store_id = ANY(%s) AND processed_at IS NOT NULL GROUP BY 1",
                    [start_epoch, self.tenant.store_ids])
                processed = cursor.fetchall()
                cursor.execute(
                    "SELECT status, count(*) FROM ingest_webhook_delivery WHERE store_id = ANY(%s) GROUP BY 1",
                    [self.tenant.store_ids])
                statuses = dict(cursor.fetchall())
            return received, processed, statuses

        received_rows, processed_rows, statuses = database.retry_db(run, what="reading the delivery series")
        received = [0] * seconds
        processed = [0] * seconds
        for second, n in received_rows:
            if 0 <= second < seconds:
                received[second] += n
        for second, n in processed_rows:
            if 0 <= second < seconds:
                processed[second] += n
        backlog, level = [], 0
        for second in range(seconds):
            level += received[second] - processed[second]
            backlog.append(level)
        return received, processed, backlog, statuses

    def analyse(self, load, orders_by_file, sockets, cores, quiet, window_from, clock_offset, opened, mix,
                tmp) -> dict[str, Any]:
        a = self.args
        start_epoch = window_from + clock_offset
        seconds = int(a.duration + a.tail)
        received, processed, backlog, statuses = self.delivery_series(start_epoch, seconds)

        index_of = [{index: key for key, index in found.items()} for found in orders_by_file]
        sent_at: dict[tuple[int, str], float] = {}
        for k, index, sent, _acked, status in load.pop("sends"):
            key = index_of[k].get(index)
            if key is not None and status == 200:
                sent_at[key] = sent
        windows: dict[int, list[float]] = defaultdict(list)
        missed_by_window: dict[int, int] = defaultdict(int)
        for sock in sockets:
            if sock["closed"] is not None:
                continue
            for (store, number), sent in sent_at.items():
                if store != sock["store"]:
                    continue
                window = int((sent - window_from) // WINDOW_S)
                seen = sock["seen"].get(number)
                if seen is None:
                    missed_by_window[window] += 1
                else:
                    windows[window].append((seen - sent) * 1000)
        latency_series = []
        all_latencies: list[float] = []
        for window in range(int(a.duration // WINDOW_S) + 1):
            values = windows.get(window, [])
            all_latencies += values
            summary = reports.latency_summary(values)
            latency_series.append({"t": window * WINDOW_S, "count": len(values), "missed": missed_by_window.get(window, 0),
                                   "p50": summary.get("p50"), "p99": summary.get("p99"), "max": summary.get("max")})

        accepted_per_s = [0] * seconds
        offered_per_s = [0] * seconds
        for t, (sent, ok) in load["per_second"].items():
            if 0 <= int(t) < seconds:
                offered_per_s[int(t)] += sent
                accepted_per_s[int(t)] += ok

        drains = self.drain_times(backlog)
        lat = reports.latency_summary(all_latencies)
        summary = {
            "stores": a.stores,
            "dashboards_open": opened,
            "webhooks_sent": load["sent"],
            "webhooks_accepted": load["ok"],
            "webhook_status": load["status"],
            "webhook_ack_ms": load["latency_ms"],
            "deliveries_by_status": statuses,
            "topics": mix["topics"],
            "backlog_max": max(backlog) if backlog else 0,
            "backlog_at_end": backlog[-1] if backlog else 0,
            "worker_max_per_s": max(processed) if processed else 0,
            "worker_mean_per_s_in_bursts": self.mean_in_bursts(processed),
            "drain_after_bursts_s": drains,
            "new_orders_watched": len([k for k in sent_at if k[0] < a.dashboards]),
            "webhook_to_screen_ms": lat,
            "screen_updates_missed": sum(missed_by_window.values()),
            "cpu_cores": cores,
            "machine_before": quiet,
        }
        series = {"offered_per_s": offered_per_s, "accepted_per_s": accepted_per_s, "received_per_s": received,
                  "processed_per_s": processed, "backlog": backlog, "latency_windows": latency_series}
        png = self.plot(series)
        rows = [
            ["stores / dashboards open", f"{a.stores:,} / {opened:,}"],
            ["shape (s:webhooks/s)", a.shape],
            ["webhooks accepted / sent", f"{load['ok']:,} / {load['sent']:,}"],
            ["ack p50 / p99 / max (ms)", f"{load['latency_ms'].get('p50')} / {load['latency_ms'].get('p99')} / "
                                         f"{load['latency_ms'].get('max')}"],
            ["deliveries by status", ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items()))],
            ["backlog max / at end", f"{summary['backlog_max']:,} / {summary['backlog_at_end']:,}"],
            ["worker max / mean in bursts (deliveries/s)", f"{summary['worker_max_per_s']:,} / "
                                                           f"{summary['worker_mean_per_s_in_bursts']}"],
            ["backlog back to base after each burst (s)", ", ".join(str(d) for d in drains) or "-"],
            ["webhook → screen p50 / p99 / max (ms)", f"{lat.get('p50')} / {lat.get('p99')} / {lat.get('max')}"],
            ["screen updates missed", summary["screen_updates_missed"]],
            ["cores", machine.cpu_line(cores)],
            ["plot", str(png.relative_to(runtime.ROOT))],
        ]
        table = reports.print_table("Peak day: Black Friday shape", ["measure", "value"], rows)
        bounded = summary["backlog_at_end"] <= max(received[-int(a.tail):] or [0]) + 10
        drained = bool(drains) and all(d is not None and d <= DRAIN_TARGET_S for d in drains)
        ack_p99 = load["latency_ms"].get("p99")
        targets = [
            # Shopify counts an answer slower than 5 s as a failure and drops a subscription
            # that keeps failing: acknowledgements come before everything else.
            {"target": "every webhook acknowledged (200)", "measured": f"{load['ok']:,} / {load['sent']:,}",
             "met": load["sent"] > 0 and load["ok"] == load["sent"]},
            {"target": f"ack p99 < {ACK_P99_TARGET_MS:,} ms, bursts included", "measured": ack_p99,
             "met": ack_p99 is not None and ack_p99 < ACK_P99_TARGET_MS},
            {"target": "backlog bounded (empty again at the end)", "measured": summary["backlog_at_end"], "met": bounded},
            {"target": f"backlog back to base within {DRAIN_TARGET_S} s after each burst", "measured": drains,
             "met": drained},
            {"target": "no screen update missed", "measured": summary["screen_updates_missed"],
             "met": summary["screen_updates_missed"] == 0},
        ]
        targets_table = reports.print_table("Peak-day targets", ["target", "measured", "met"],
                                            [[t["target"], t["measured"], "yes" if t["met"] else "NO"] for t in targets])
        return {"summary": summary, "series": series, "targets": targets, "table": table,
                "targets_table": targets_table, "plot": str(png)}

    def bursts(self) -> list[tuple[float, float]]:
        """(start, end) of every segment above the base (lowest) rate."""
        schedule = self.args.schedule
        base = min(rate for _, rate in schedule)
        spans = []
        for n, (at, rate) in enumerate(schedule):
            until = min(schedule[n + 1][0] if n + 1 < len(schedule) else self.args.duration, self.args.duration)
            if rate > base and until > at:
                spans.append((at, until))
        return spans

    def mean_in_bursts(self, processed: list[int]) -> float | None:
        values = [processed[s] for start, end in self.bursts() for s in range(int(start), int(end)) if s < len(processed)]
        return round(sum(values) / len(values), 1) if values else None

    def drain_times(self, backlog: list[int]) -> list[float | None]:
        """Seconds from each burst's end until the backlog is back to its level before the burst."""
        result: list[float | None] = []
        for start, end in self.bursts():
            before = backlog[max(int(start) - 10, 0):int(start)] or [0]
            base = max(before) + 50
            drained = next((s for s in range(int(end), len(backlog)) if backlog[s] <= base), None)
            result.append(None if drained is None else drained - int(end))
        return result

    def plot(self, series: dict[str, Any]) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        seconds = list(range(len(series["backlog"])))
        fig, (rates, backlog, latency) = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
        rates.plot(seconds, series["offered_per_s"], label="offered", color="#94a3b8", linewidth=1)
        rates.plot(seconds, series["accepted_per_s"], label="accepted (200)", color="#2563eb", linewidth=1)
        rates.plot(seconds, series["processed_per_s"], label="processed by the worker", color="#16a34a", linewidth=1)
        rates.set_ylabel("webhooks / s")
        rates.legend(loc="upper right")
        rates.set_title(f"OpsPulse peak day: {self.args.stores:,} stores, Black Friday shape")
        backlog.plot(seconds, series["backlog"], color="#dc2626", linewidth=1)
        backlog.set_ylabel("backlog (deliveries)")
        windows = series["latency_windows"]
        xs = [w["t"] + WINDOW_S / 2 for w in windows if w["p50"] is not None]
        latency.plot(xs, [w["p50"] for w in windows if w["p50"] is not None], label="p50", color="#2563eb")
        latency.plot(xs, [w["p99"] for w in windows if w["p99"] is not None], label="p99", color="#9333ea")
        latency.axhline(250, color="#94a3b8", linestyle="--", linewidth=1, label="250 ms")
        latency.set_yscale("log")
        latency.set_ylabel("webhook → screen (ms)")
        latency.set_xlabel("seconds since the start of sending")
        latency.legend(loc="upper right")
        for start, end in self.bursts():
            for ax in (rates, backlog, latency):
                ax.axvspan(start, end, color="#fde68a", alpha=0.3, linewidth=0)
        fig.tight_layout()
        runtime.RESULTS.mkdir(parents=True, exist_ok=True)
        path = runtime.RESULTS / f"{self.args.result_name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        log(f"wrote {path.relative_to(runtime.ROOT)}")
        return path


def main() -> None:
    runtime.stop_on_sigterm()
    PeakBench(parse_args()).run()


if __name__ == "__main__":
    main()
