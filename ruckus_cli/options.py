"""Options shared by the CLI's commands (typer ``Annotated`` aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ServerOpt = Annotated[str | None, typer.Option("--server", help="Server URL (env RUCKUS_SERVER).")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="API token (env RUCKUS_TOKEN).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
FileOpt = Annotated[Path, typer.Option("-f", "--file", exists=True, dir_okay=False, help="Experiment YAML/JSON.")]
