"""The quick guard for the webhook → job → screen path: this tree against an earlier commit.

Runs the drain (`drain.py`), the end-to-end run at its default size (`e2e.py`, 200
dashboards, 20 stores, 50 orders/s, a shorter sending time) and a short peak with one
burst (`peak.py`) on the working tree and on `--base`, in turns (base, tree, then tree,
base, then base, tree), each side with its own code and benchmark scripts, on the same
embedded PostgreSQL with scratch databases. It prints each figure of both sides and
their difference, and writes bench/results/quick.json. About five minutes.

    make bench-quick                 # the working tree against HEAD
    make bench-quick BASE=HEAD~3     # ... against an earlier commit

The base is checked out into a temporary worktree, with its own assets built. The
benchmarks take the machine's two cores, so run it on a quiet machine and compare only
runs of one sitting; the reference loop of each run is printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
RESULTS = ROOT / "bench" / "results"

# (benchmark, its arguments): the default sizes, with shorter sending times.
RUNS = [
    ("drain", []),
    ("e2e", ["--duration", "10", "--grace", "5", "--quiet-wait", "10"]),
    ("peak", ["--stores", "200", "--dashboards", "50", "--duration", "60", "--shape", "0:150,20:600,40:150",
              "--tail", "20", "--quiet-wait", "10"]),
]


def figure(*path: str) -> Callable[[dict[str, Any]], Any]:
    def read(result: dict[str, Any]) -> Any:
        value: Any = result
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    return read


# Per benchmark: (what, how to read it from the result file, whether lower is better;
# None for the machine's own speed, which is no verdict on the code).
FIGURES: dict[str, list[tuple[str, Callable[[dict[str, Any]], Any], bool | None]]] = {
    "drain": [
        ("reference loop (ms)", figure("machine", "python_loop_ms"), None),
        ("deliveries per second", figure("opspulse", "per_second"), False),
        ("Python CPU ms per delivery", figure("opspulse", "python_cpu_ms_per_delivery"), True),
        ("PostgreSQL CPU ms per delivery", figure("opspulse", "postgres_cpu_ms_per_delivery"), True),
        ("statements per delivery", figure("opspulse", "statements_per_delivery"), True),
    ],
    "e2e": [
        ("reference loop (ms)", figure("machine", "python_loop_ms"), None),
        ("webhooks acknowledged", figure("summary", "orders_accepted"), False),
        ("ack p99 (ms)", figure("summary", "webhook_ack_ms", "p99"), True),
        ("webhook → batch start p50 (ms)", figure("summary", "webhook_to_batch_start_ms", "p50"), True),
        ("webhook → screen p50 (ms)", figure("summary", "webhook_to_screen_ms", "p50"), True),
        ("webhook → screen p99 (ms)", figure("summary", "webhook_to_screen_ms", "p99"), True),
        ("rows missed on screens", figure("summary", "deliveries_missed"), True),
        ("web cores", figure("summary", "cpu_cores", "web"), True),
        ("worker cores", figure("summary", "cpu_cores", "worker"), True),
        ("PostgreSQL cores", figure("summary", "cpu_cores", "postgres"), True),
        ("bytes per order per dashboard", figure("summary", "per_order_update_per_dashboard", "wire_bytes"), True),
    ],
    "peak": [
        ("reference loop (ms)", figure("machine", "python_loop_ms"), None),
        ("webhooks sent", figure("summary", "webhooks_sent"), False),
        ("webhooks acknowledged", figure("summary", "webhooks_accepted"), False),
        ("ack p99 (ms)", figure("summary", "webhook_ack_ms", "p99"), True),
        ("ack max (ms)", figure("summary", "webhook_ack_ms", "max"), True),
        ("backlog max", figure("summary", "backlog_max"), True),
        ("webhook → screen p50 (ms)", figure("summary", "webhook_to_screen_ms", "p50"), True),
        ("webhook → screen p99 (ms)", figure("summary", "webhook_to_screen_ms", "p99"), True),
        ("web cores", figure("summary", "cpu_cores", "web"), True),
        ("worker cores", figure("summary", "cpu_cores", "worker"), True),
        ("PostgreSQL cores", figure("summary", "cpu_cores", "postgres"), True),
    ],
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def check_out(base: str, into: Path) -> None:
    """The base commit in a worktree of its own, sharing the virtualenv and npm packages."""
    git("worktree", "add", "--detach", str(into), base)
    for shared in (".venv", "node_modules"):
        (into / shared).symlink_to(ROOT / shared)
    subprocess.run(["npm", "run", "--silent", "build"], cwd=into, check=True, stdout=subprocess.DEVNULL)


def run(side: str, tree: Path, benchmark: str, arguments: list[str]) -> dict[str, Any]:
    name = f"quick-{benchmark}-{side}"
    log(f"{benchmark} on the {side}")
    env = {**os.environ, "PYTHONPATH": str(tree), "OPSPULSE_VAR_DIR": str(ROOT / "var")}
    command = [str(PYTHON), f"bench/{benchmark}.py", "--scratch-db", "--result-name", name, *arguments]
    finished = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if finished.returncode != 0:
        sys.exit(f"{benchmark} failed on the {side}:\n{finished.stdout[-3000:]}{finished.stderr[-3000:]}")
    return json.loads((tree / "bench" / "results" / f"{name}.json").read_text())


def difference(base: Any, tree: Any, lower_is_better: bool | None) -> str:
    if not isinstance(base, (int, float)) or not isinstance(tree, (int, float)):
        return ""
    change = tree - base
    if base:
        text = f"{change:+.3g} ({change / base:+.0%})"
    else:
        text = f"{change:+.3g}"
    if lower_is_better is None:
        return text
    worse = change > 0 if lower_is_better else change < 0
    return text + ("  worse" if worse and abs(change) > abs(base) * 0.05 else "")


def report(results: dict[str, dict[str, dict[str, Any]]], base: str) -> list[dict[str, Any]]:
    rows = []
    for benchmark, figures in FIGURES.items():
        for what, read, lower_is_better in figures:
            before, after = read(results[benchmark]["base"]), read(results[benchmark]["tree"])
            rows.append({"benchmark": benchmark, "figure": what, "base": before, "tree": after,
                         "difference": difference(before, after, lower_is_better)})
    header = ("benchmark", "figure", base[:12], "this tree", "difference")
    widths = [
        max(len(title), *(len(str(row[key])) for row in rows))
        for title, key in zip(header, ("benchmark", "figure", "base", "tree"), strict=False)
    ]
    print("  ".join(text.ljust(width) for text, width in zip(header, [*widths, 0], strict=True)))
    for row in rows:
        cells = [row["benchmark"], row["figure"], row["base"], row["tree"], row["difference"]]
        print("  ".join(str(cell).ljust(width) for cell, width in zip(cells, [*widths, 0], strict=True)))
    print('"worse": more than 5% the wrong way. One run a side: a difference that the reference'
          " loops or a second sitting do not confirm is noise.")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="the commit to compare with (default: HEAD)")
    args = parser.parse_args()
    base = git("rev-parse", "--short", args.base)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="opspulse-quick-") as scratch:
        base_tree = Path(scratch) / "base"
        log(f"checking out {base} beside the working tree")
        check_out(base, base_tree)
        try:
            results: dict[str, dict[str, dict[str, Any]]] = {}
            for turn, (benchmark, arguments) in enumerate(RUNS):
                sides = [("base", base_tree), ("tree", ROOT)]
                if turn % 2:
                    sides.reverse()
                results[benchmark] = {side: run(side, tree, benchmark, arguments) for side, tree in sides}
        finally:
            git("worktree", "remove", "--force", str(base_tree))
            shutil.rmtree(base_tree, ignore_errors=True)
    print()
    rows = report(results, base)
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {"base": base, "tree": git("rev-parse", "--short", "HEAD") + ("+" if git("status", "--porcelain") else ""),
               "minutes": round((time.monotonic() - started) / 60, 1), "figures": rows}
    (RESULTS / "quick.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    log(f"wrote bench/results/quick.json ({summary['minutes']} min)")


if __name__ == "__main__":
    main()
