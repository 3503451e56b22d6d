"""Figures and reports: latency summaries, tables, and the JSON result files under bench/results/."""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from support.machine import python_speed_ms
from support.runtime import RESULTS, ROOT, log


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


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    log(f"wrote {path.relative_to(ROOT)}")
    return path


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


def orders_on_screens(live: list[dict[str, Any]], sent: dict[tuple[int, str], float]
                      ) -> tuple[list[float], int, dict[str, float | None]]:
    """What the `live` dashboards (wsclients.py's socket records) saw of the orders `sent`
    ((store index, order number) -> send time) to their store.

    Return the webhook -> screen latencies (ms), the number of (dashboard, order) pairs
    missed, and per order and dashboard the mean wire bytes, payload bytes and frames.
    """
    numbers_by_store: dict[int, list[str]] = defaultdict(list)
    for store_index, number in sent:
        numbers_by_store[store_index].append(number)
    latencies: list[float] = []
    missed = 0
    wire, payload, frames = [], [], []
    for sock in live:
        numbers = numbers_by_store.get(sock["store"], [])
        for number in numbers:
            seen = sock["seen"].get(number)
            if seen is None:
                missed += 1
            else:
                latencies.append((seen - sent[(sock["store"], number)]) * 1000)
        if numbers:
            wire.append(sock["wire_bytes"] / len(numbers))
            payload.append(sock["payload_bytes"] / len(numbers))
            frames.append(sock["frames"] / len(numbers))
    mean = lambda values: round(sum(values) / len(values), 1) if values else None  # noqa: E731
    per_order = {"wire_bytes": mean(wire), "payload_bytes": mean(payload),
                 "frames": round(sum(frames) / len(frames), 3) if frames else None}
    return latencies, missed, per_order
