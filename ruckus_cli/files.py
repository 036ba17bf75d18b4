"""Experiment files (YAML or JSON): loading with line numbers, so errors name the line and the field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ruckus_cli.client import EXIT_USAGE, CliError
from ruckus_cli.errors import api_error_lines

#: Keys an experiment file may contain (the body of ``POST /api/v1/experiments/``).
EXPERIMENT_KEYS = {
    "name", "description", "task", "models", "runtimes", "agents", "runs_per_job", "requested_metrics", "load",
}


class ExperimentFile:
    """A parsed experiment file that remembers where each value was written.

    Args:
        path: The file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text()
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}", EXIT_USAGE) from exc
        try:
            self._root = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise CliError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}", EXIT_USAGE) from exc
        if not isinstance(self.data, dict):
            raise CliError(f"{path}:1: an experiment file must be a mapping of fields (name, task, models...)",
                           EXIT_USAGE)
        unknown = sorted(set(self.data) - EXPERIMENT_KEYS)
        if unknown:
            field = unknown[0]
            raise CliError(
                f"{self.location(field)}: unknown field {field!r}; allowed: {', '.join(sorted(EXPERIMENT_KEYS))}",
                EXIT_USAGE,
            )

    def line_of(self, dotted: str) -> int | None:
        """1-based line where the value at ``dotted`` (e.g. ``task.params.num_samples``) was written.

        Falls back to the closest existing parent when the field itself is missing. A list item may be written
        ``models.1`` or ``models[1]`` (as the server names load spec fields: ``load.request_rate[2]``).
        """
        dotted = re.sub(r"\[(\d+)\]", r".\1", dotted)
        node: Any = self._root
        line = node.start_mark.line + 1 if node is not None else None
        for part in dotted.split("."):
            child = None
            if isinstance(node, yaml.MappingNode):
                child = next((v for k, v in node.value if k.value == part), None)
                if child is not None:
                    line = next(k for k, v in node.value if v is child).start_mark.line + 1
            elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
                child = node.value[int(part)]
                line = child.start_mark.line + 1
            if child is None:
                break
            node = child
        return line

    def location(self, dotted: str) -> str:
        """``file:line`` of a field."""
        line = self.line_of(dotted)
        return f"{self.path}:{line}" if line else str(self.path)

    def explain(self, body: Any) -> str:
        """Turn an API error body about this file's fields into ``file:line: field: message`` lines."""
        return "\n".join(api_error_lines(body, locate=self.location))
