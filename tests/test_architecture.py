"""The house's shape (docs/architecture.md), checked on every run of the suite.

import-linter holds the layers (lib, domain apps, platforms, ingest, live, config), the
providers' independence and "no import cycles" (its contracts are in pyproject.toml). It
counts function-local imports too, so a cycle cannot hide inside a function either.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_layers_run_one_way_and_no_module_imports_itself_back():
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_no_test_or_benchmark_imports_a_test_module_or_a_conftest():
    """Shared test code lives in tests/support and bench/support, never in a test file."""
    offenders = []
    for folder in ("opspulse", "tests", "bench", "scripts", "config"):
        for path in (ROOT / folder).rglob("*.py"):
            for line, module in _imported_modules(path):
                last = module.rsplit(".", 1)[-1]
                if last == "conftest" or last.startswith("test_"):
                    offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not offenders, "\n".join(offenders)
