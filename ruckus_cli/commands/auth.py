"""``ruckus login``: get an API token and remember it with the server URL."""

from __future__ import annotations

from typing import Annotated

import typer

from ruckus_cli import config as cfg
from ruckus_cli.client import Api
from ruckus_cli.options import ServerOpt
from ruckus_cli.output import console, exits_on_error


@exits_on_error
def login(
    username: Annotated[str, typer.Option(prompt=True, help="User name.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="Password.")],
    server: ServerOpt = None,
) -> None:
    """Get an API token and store it (with the server URL) in the config file."""
    conf = cfg.load(server, None)
    api = Api(cfg.Config(conf.server, None))
    answer = api.post("/api/v1/auth/token/", {"username": username, "password": password}, auth=False)
    path = cfg.save(conf.server, answer["token"])
    console.print(f"Logged in to {conf.server} as {username}; token saved in {path}")
