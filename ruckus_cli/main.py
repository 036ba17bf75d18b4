"""ruckus: manage agents, experiments, jobs and results on a RUCKUS server.

Exit codes: 0 success, 1 the server refused or failed the request, 2 bad usage or a bad file, 3 the server cannot
be reached, 4 not logged in or not allowed. Server URL and token: --server/--token, RUCKUS_SERVER/RUCKUS_TOKEN,
or the file written by `ruckus login`.
"""

from __future__ import annotations

import typer

from ruckus_cli.commands import agents, auth, experiments, jobs, results, server

# This module's docstring is the text of ``ruckus --help``.
app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)
app.command()(auth.login)
app.command()(server.health)
app.command("server")(server.serve)
app.add_typer(agents.app, name="agents")
app.add_typer(experiments.app, name="experiments")
app.add_typer(jobs.app, name="jobs")
app.add_typer(results.app, name="results")


def main() -> None:
    """Console-script entry point."""
    app()
