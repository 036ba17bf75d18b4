"""The agent's latest hardware benchmark, kept under its data directory and attached to ``AgentInfo``."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from agent_runtime.logging import get_logger
from common.files import atomic_write_text
from common.protocol import HardwareBenchmarkResult

log = get_logger(__name__)


def latest_path(data_dir: Path) -> Path:
    """Where the latest result lives: ``<data_dir>/hwbench/latest.json``."""
    return Path(data_dir) / "hwbench" / "latest.json"


def save_latest(data_dir: Path, result: HardwareBenchmarkResult) -> Path:
    """Store ``result`` as the latest benchmark (atomically: a reader never sees half a file).

    Args:
        data_dir: The agent's data directory.
        result: The benchmark.

    Returns:
        The file written.
    """
    path = latest_path(data_dir)
    atomic_write_text(path, result.model_dump_json(indent=1))
    return path


def load_latest(data_dir: Path) -> HardwareBenchmarkResult | None:
    """The latest stored benchmark, or None when there is none (or it cannot be read).

    Args:
        data_dir: The agent's data directory.

    Returns:
        The result or None.
    """
    path = latest_path(data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("hwbench.latest.unreadable", path=str(path), error=str(exc))
        return None
    try:
        return HardwareBenchmarkResult.model_validate_json(text)
    except ValidationError as exc:
        log.warning("hwbench.latest.invalid", path=str(path), error=str(exc))
        return None
