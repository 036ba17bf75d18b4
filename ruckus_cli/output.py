"""Terminal output of the CLI: the shared consoles, JSON and table printing, and error reporting.

Human-readable output goes through :data:`console` (stdout) and :data:`err` (stderr); ``--json`` output is
written to stdout directly so that scripts get plain JSON without colors or line wrapping.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from common.descriptive import cv_warning
from ruckus_cli.client import CliError

console = Console()
err = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def print_json(data: Any) -> None:
    """Print JSON on stdout (machine-readable: no colors, no wrapping).

    Args:
        data: Anything JSON-serializable; other values (dates, decimals) are written with ``str``.
    """
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a rich table; ``None`` cells are left empty.

    Cells and title are printed as they are: text from the server (names, reasons, error messages such as
    ``[Errno 111] Connection refused``) is never read as rich markup.

    Args:
        title: Table title.
        columns: Column headers.
        rows: One list of cells per row, in column order.
    """
    table = Table(title=escape(title))
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    console.print(table)


def format_time(value: str | None) -> str:
    """An API timestamp for people: ``2026-11-30 05:18:18 UTC``.

    Args:
        value: An ISO 8601 timestamp as the API writes it, or None.

    Returns:
        The time in UTC to the second; ``—`` for None; the value unchanged when it is not a timestamp.
    """
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_peak(fig: dict[str, Any]) -> str:
    """A measured peak for people: ``73 GFLOP/s (best of 3; mean 40.67; unstable: CV 69%)``.

    Args:
        fig: A figure of ``summary.peaks.figures``: ``value`` (the best repeat), ``unit``, and from newer
            servers ``mean``, ``cv`` and ``n`` of the repeats.

    Returns:
        The peak, then what the repeats say about it (their mean, and a warning when they varied a lot).
    """
    text = f"{fig['value']:.4g} {fig.get('unit') or ''}".rstrip()
    notes = []
    if fig.get("n"):
        notes.append(f"best of {fig['n']}")
    if fig.get("mean") is not None:
        notes.append(f"mean {fig['mean']:.4g}")
    warning = cv_warning(fig.get("cv"))
    if warning:
        notes.append(warning)
    return f"{text} ({'; '.join(notes)})" if notes else text


def fail(exc: CliError) -> NoReturn:
    """Report an error on stderr and exit with its code.

    Args:
        exc: The error to report.

    Raises:
        typer.Exit: Always, with ``exc.code``.
    """
    err.print(f"[red]error:[/red] {exc}", highlight=False)
    raise typer.Exit(exc.code)


def exits_on_error(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command so that a :class:`CliError` becomes a message on stderr and its exit code.

    Args:
        fn: The command function.

    Returns:
        The wrapped command (same signature, so typer still sees its options).
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            fail(exc)

    return wrapper
