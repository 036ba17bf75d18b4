"""Print the shape of the codebase: import cycles between the project's packages, function-local imports of
the project's own modules in production code, the largest modules and the hand-written UI types.

Run from the repository root: ``.venv/bin/python benchmarks/codebase_shape.py``. The figures are what the
architecture notes quote before and after a restructuring. With ``--check`` (``make lint``) it fails on a
function-local import of the project's own modules, except in ``AppConfig.ready`` or marked ``# lazy: <why>``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "agents", "experiments", "results", "scheduling", "ruckus_server", "agent_runtime",
            "ruckus_cli")
SERVER_APPS = ("agents", "experiments", "results", "scheduling", "ruckus_server")


def production_files() -> list[Path]:
    """Python files of the project's packages, without migrations."""
    files: list[Path] = []
    for package in PACKAGES:
        base = ROOT / package
        if base.is_dir():
            files += [p for p in base.rglob("*.py") if "migrations" not in p.parts]
    return sorted(files)


def local_project_imports(*, allowed: bool = True) -> list[str]:
    """``path:line module`` of every import of a project package that sits inside a function.

    Args:
        allowed: Include the allowed ones: in an ``AppConfig.ready`` (Django's registration point, before which
            models cannot be imported) or marked ``# lazy: <why>`` (a module that pulls in a heavy optional
            library such as torch, imported only when used).
    """
    found: list[str] = []
    for path in production_files():
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source, str(path))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if not allowed and (func.name == "ready" and path.name == "apps.py"):
                continue
            for node in ast.walk(func):
                names: list[str] = []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                if names and not allowed and "# lazy:" in lines[node.lineno - 1]:
                    continue
                for name in names:
                    if name.split(".")[0] in PACKAGES:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    return sorted(set(found))


def package_cycles() -> list[str]:
    """Pairs of server packages that import each other (directly or through others), as ``a <-> b``."""
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*[p for p in SERVER_APPS if (ROOT / p).is_dir()], "common")
    cycles = []
    apps = [p for p in SERVER_APPS if (ROOT / p).is_dir()]
    for i, a in enumerate(apps):
        for b in apps[i + 1:]:
            if graph.chain_exists(importer=a, imported=b, as_packages=True) and graph.chain_exists(
                importer=b, imported=a, as_packages=True
            ):
                cycles.append(f"{a} <-> {b}")
    return cycles


def check() -> int:
    """Fail (exit status 1) on a function-local import of the project's own modules that is not allowed.

    Returns:
        The exit status.
    """
    bad = local_project_imports(allowed=False)
    for line in bad:
        print(f"{line}: import it at the top of the module (or mark a heavy optional import '# lazy: <why>')")
    return 1 if bad else 0


def main() -> None:
    """Print every figure."""
    local = local_project_imports()
    print(f"function-local imports of the project's own modules: {len(local)}")
    for line in local:
        print(f"  {line}")
    cycles = package_cycles()
    print(f"package cycles between server apps (top-level imports included by grimp): {len(cycles)}")
    for line in cycles:
        print(f"  {line}")
    sizes = sorted(((len(p.read_text().splitlines()), p) for p in production_files()), reverse=True)[:5]
    print("five largest modules:")
    for lines, path in sizes:
        print(f"  {lines:5d} {path.relative_to(ROOT)}")
    types = ROOT / "frontend" / "src" / "api" / "types.ts"
    print(f"hand-written UI types: {len(types.read_text().splitlines()) if types.exists() else 0} lines")


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(check())
    main()
