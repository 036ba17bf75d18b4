"""ruckus: manage agents, experiments, jobs and results on a RUCKUS server.

Exit codes: 0 success, 1 the server refused or failed the request (or asked to wait: too many requests), 2 bad
usage or a bad file, 3 the server cannot be reached, 4 not logged in, token expired or revoked, or not allowed by
your role. Server URL and token: --server/--token, RUCKUS_SERVER/RUCKUS_TOKEN, or the file written by
`ruckus login` (`ruckus logout` revokes and removes it; `ruckus whoami` shows your role).
"""

from __future__ import annotations

import typer

from ruckus_cli.commands import agents, auth, experiments, jobs, results, server

# This module's docstring is the text of ``ruckus --help``.
app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)
app.command()(auth.login)
app.command()(auth.logout)
app.command()(auth.whoami)
app.command()(server.health)
app.command("server")(server.serve)
app.add_typer(agents.app, name="agents")
app.add_typer(experiments.app, name="experiments")
app.add_typer(jobs.app, name="jobs")
app.add_typer(results.app, name="results")


def main() -> None:
    """Console-script entry point."""
    app()
