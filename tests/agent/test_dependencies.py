"""The agent stays light: no SciPy and no server-side statistics (the server alone computes statistics)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import agent_runtime

AGENT_DIR = Path(agent_runtime.__file__).parent
#: Modules the agent must never import, not even lazily.
FORBIDDEN = ("common.stats", "scipy")


def _imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` statement anywhere in ``path`` names (function-level imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN)


def test_no_agent_module_imports_scipy_or_server_statistics():
    offenders = {
        str(path.relative_to(AGENT_DIR)): sorted(n for n in _imported_modules(path) if _forbidden(n))
        for path in sorted(AGENT_DIR.rglob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_importing_the_agent_loads_neither():
    code = (
        "import sys, agent_runtime.api, agent_runtime.cli, agent_runtime.hwbench;"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'scipy' or m == 'common.stats'];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
