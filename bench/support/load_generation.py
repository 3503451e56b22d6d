"""Open-loop load: loadgen.py processes replaying request files, their results merged."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from support.processes import wait4
from support.reports import latency_summary
from support.runtime import BENCH, PYTHON


def run_loadgen(*, port: int, prefix: str, files: int, rate: float, duration: float, record_sends: bool = False,
                on_progress=None, tmp: Path, name: str, max_conns: int = 256,
                schedule: list[tuple[float, float]] | None = None) -> dict[str, Any]:
    """Run `files` loadgen processes, process k replaying <prefix>-k.bin; merge their results.

    With `schedule` ([(from second, rate), ...]) the offered rate follows it; `rate` is
    then only used to stagger the processes.
    """
    start_at = time.monotonic() + 0.5
    procs = []
    for k in range(files):
        out = tmp / f"{name}-loadgen-{k}.json"
        args = [PYTHON, str(BENCH / "loadgen.py"), "--port", str(port), "--file", f"{prefix}-{k}.bin",
                "--duration", str(duration),
                # Stagger the processes so their requests interleave instead of pairing up.
                "--start-at", str(start_at + k / rate), "--out", str(out), "--max-conns", str(max_conns)]
        if schedule:
            schedule_file = tmp / f"{name}-schedule-{k}.json"
            schedule_file.write_text(json.dumps([[at, r / files] for at, r in schedule]))
            args += ["--schedule", str(schedule_file)]
        else:
            args += ["--rate", str(rate / files)]
        if record_sends:
            args.append("--record-sends")
        procs.append((subprocess.Popen(args, stdout=subprocess.PIPE, text=True), out))
    progress: list[dict[int, dict]] = [{} for _ in procs]

    def read(k: int, stream) -> None:
        for line in stream:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            progress[k][row["t"]] = row
            if on_progress is not None:
                on_progress(k, row)

    readers = [threading.Thread(target=read, args=(k, p.stdout), daemon=True) for k, (p, _) in enumerate(procs)]
    for reader in readers:
        reader.start()
    cpu = 0.0
    for popen, _ in procs:
        code, used = wait4(popen, timeout=duration + 60)
        cpu += used
        if code != 0:
            raise RuntimeError(f"loadgen exited with {code}")
    for reader in readers:
        reader.join(timeout=5)
    merged: dict[str, Any] = {"sent": 0, "ok": 0, "status": {}, "unanswered": 0, "exhausted": False,
                              "send_lag_ms_p99": 0.0, "sends": [], "per_second": {}}
    latencies: list[float] = []
    for k, (_, out) in enumerate(procs):
        part = json.loads(out.read_text())
        merged["sent"] += part["sent"]
        merged["ok"] += part["ok"]
        merged["unanswered"] += part["unanswered"]
        merged["exhausted"] |= part["exhausted"]
        merged["send_lag_ms_p99"] = max(merged["send_lag_ms_p99"], part["send_lag_ms_p99"])
        for key, n in part["status"].items():
            merged["status"][key] = merged["status"].get(key, 0) + n
        latencies.extend(part["latency_ms"])
        merged["sends"].extend([k, *row] for row in part["sends"])
        for t, sent, ok in part["per_second"]:
            slot = merged["per_second"].setdefault(t, [0, 0])
            slot[0] += sent
            slot[1] += ok
    merged["latency_ms"] = latency_summary(latencies)
    merged["generator_cpu_s"] = cpu
    merged["offered_per_s"] = rate
    merged["duration_s"] = duration
    merged["accepted_per_s"] = round(merged["ok"] / duration, 1)
    return merged
