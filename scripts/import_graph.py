"""Draw OpsPulse's import graph between its parts, from the code, into docs/import-graph.png.

It needs Graphviz's `dot` (Debian: apt install graphviz).

    .venv/bin/python scripts/import_graph.py

Each box is a part (a layer's package; the providers under platforms apart), ranked by
its layer in the import contract (pyproject.toml, [tool.importlinter]); each arrow is
"imports", labelled with how many modules import across it. Tests and migrations are
left out: the contract is about the product's code. An arrow that pointed up would be a
broken layer, drawn red.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "import-graph.png"
DOMAIN = ("privacy", "alerts", "commerce", "metrics", "stores", "accounts")
PROVIDERS = ("opspulse.platforms.shopify", "opspulse.platforms.woocommerce")


def layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [contract] = [c for c in config["contracts"] if c["type"] == "layers"]
    rows = []
    for layer in contract["layers"]:
        names = [name.strip().strip("()") for name in layer.replace(":", "|").split("|")]
        rows.append([name for name in names if name])
    return rows


def part_of(module: str, parts: list[str]) -> str | None:
    if ".tests" in module or ".migrations" in module:
        return None
    for part in sorted(parts, key=len, reverse=True):
        if module == part or module.startswith(part + "."):
            return part
    return None


def edges(parts: list[str]) -> collections.Counter[tuple[str, str]]:
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("opspulse", "config")
    counted: collections.Counter[tuple[str, str]] = collections.Counter()
    for module in graph.modules:
        importer = part_of(module, parts)
        if importer is None:
            continue
        for imported_module in graph.find_modules_directly_imported_by(module):
            imported = part_of(imported_module, parts)
            if imported is not None and imported != importer:
                counted[importer, imported] += 1
    return counted


def label(part: str) -> str:
    return part.removeprefix("opspulse.").replace("platforms.", "platforms/")


def dot_source() -> str:
    rows = layers()
    # The providers sit on a rank of their own, under the layer that holds them.
    platforms_row = next(i for i, row in enumerate(rows) if "opspulse.platforms" in row)
    rows.insert(platforms_row + 1, list(PROVIDERS))
    rank = {part: index for index, row in enumerate(rows) for part in row}
    counted = edges(list(rank))
    present = {part for edge in counted for part in edge}
    lines = [
        "digraph opspulse {",
        '  graph [rankdir=TB, newrank=true, nodesep=0.35, ranksep=0.32, fontname="Helvetica", fontsize=11,',
        '         label="OpsPulse: which part imports which (from the code; number = modules importing)", labelloc=t];',
        '  node [shape=box, style="rounded,filled", fillcolor="#eef2ff", color="#6366f1",',
        '        fontname="DejaVu Sans Mono", fontsize=10, height=0.3];',
        '  edge [color="#94a3b8", arrowsize=0.6, fontname="Helvetica", fontsize=8, fontcolor="#64748b"];',
    ]
    domain = [part for row in rows for part in row if part.split(".")[-1] in DOMAIN and part in present]
    lines.append('  subgraph cluster_domain { label="domain apps"; color="#cbd5e1"; fontsize=9;')
    lines += [f'    "{part}" [label="{label(part)}"];' for part in domain]
    lines.append("  }")
    for row in rows:
        shown = [part for part in row if part in present]
        if shown:
            lines.append("  { rank=same; " + " ".join(f'"{part}" [label="{label(part)}"];' for part in shown) + " }")
    # An invisible spine holds each layer on its own rank, top to bottom.
    firsts = [next(part for part in row if part in present) for row in rows if any(part in present for part in row)]
    lines += [f'  "{upper}" -> "{lower}" [style=invis, weight=10];' for upper, lower in zip(firsts, firsts[1:])]
    for (importer, imported), count in sorted(counted.items()):
        upward = rank[imported] < rank[importer] and not (importer in PROVIDERS and imported == "opspulse.platforms")
        colour = ', color="#dc2626", fontcolor="#dc2626", constraint=false' if upward else ""
        lines.append(f'  "{importer}" -> "{imported}" [label="{count}"{colour}];')
    lines.append("}")
    return "\n".join(lines)


def draw() -> None:
    source = dot_source()
    try:
        subprocess.run(["dot", "-Tpng", "-Gdpi=110", "-o", str(OUTPUT)], input=source, text=True, check=True)
    except FileNotFoundError:
        sys.exit("Graphviz's dot is needed to draw the graph (Debian: apt install graphviz)")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    draw()
