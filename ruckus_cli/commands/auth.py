"""``ruckus login``, ``ruckus logout`` and ``ruckus whoami``: API tokens, and who the server takes you for.

``login`` trades a user name and password for an API token and stores it, with its expiry and the server URL,
in the config file; ``logout`` revokes the token on the server (``--all``: every token of the user) and removes
it from the file; ``whoami`` shows the user, role, permissions and when the token expires.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from ruckus_cli import config as cfg
from ruckus_cli.client import EXIT_AUTH, Api, CliError, connect, utc_text
from ruckus_cli.options import JsonOpt, ServerOpt, TokenOpt
from ruckus_cli.output import console, err, exits_on_error, print_json, print_table

#: Each permission the server reports, as ``whoami`` names it.
PERMISSION_NAMES = {
    "view": "read experiments, jobs, results and agents",
    "create_experiments": "create experiments, and edit, cancel, retry and delete your own",
    "manage_all_experiments": "act on anyone's experiments",
    "manage_agents": "register, edit, refresh, (de)activate and remove agents",
}
#: Said of a user without a role: the server refuses every other request.
NO_ROLE = "no role: the server refuses every request; ask a fleet admin for one (viewer, operator or fleet-admin)"


def expiry_text(expiry: str | None, now: datetime | None = None) -> str:
    """When a token expires, for people: ``2026-12-07 08:00:00 UTC (in 6 d 23 h)``.

    Args:
        expiry: The expiry (ISO 8601), or None for a token that never expires.
        now: The current time (default: now).

    Returns:
        The text; ``never`` without an expiry, ``... (expired)`` once it has passed.
    """
    moment = cfg.parse_time(expiry)
    if moment is None:
        return utc_text(expiry)
    left = (moment - (now or datetime.now(UTC))).total_seconds()
    if left <= 0:
        return f"{utc_text(expiry)} (expired)"
    days, rest = divmod(int(left), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    span = f"{days} d {hours} h" if days else f"{hours} h {minutes} min" if hours else f"{max(minutes, 1)} min"
    return f"{utc_text(expiry)} (in {span})"


def role_text(user: dict[str, Any]) -> str:
    """The user's role, or what having none means."""
    return str(user.get("role") or NO_ROLE)


@exits_on_error
def login(
    username: Annotated[str, typer.Option(prompt=True, help="User name.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="Password.")],
    server: ServerOpt = None,
) -> None:
    """Get an API token and store it, with its expiry and the server URL, in the config file."""
    conf = cfg.load(server, None)
    api = Api(cfg.Config(conf.server, None))
    answer = api.post("/api/v1/auth/token/", {"username": username, "password": password}, auth=False)
    expiry = answer.get("expiry")
    path = cfg.save(conf.server, answer["token"], expiry)
    user = answer.get("user") or {"username": username}
    console.print(f"Logged in to {conf.server} as {user['username']} ({user.get('role') or 'no role'})",
                  highlight=False)
    console.print(f"Token expires: {expiry_text(expiry)}; saved in {path}", highlight=False)
    if not user.get("role") and "role" in user:
        err.print(f"[yellow]warning:[/yellow] your account has {NO_ROLE}", highlight=False)


@exits_on_error
def logout(
    everywhere: Annotated[bool, typer.Option("--all", help="Revoke every token of your user, not only this one.")]
    = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Revoke the token on the server (--all: all your tokens) and remove it from the config file."""
    conf = cfg.load(server, token)
    if not conf.token:
        console.print("Not logged in: there is no token to revoke.")
        return
    dead = f"the token had expired at {utc_text(conf.expiry)}" if conf.expired() else None
    if dead is None:
        try:
            Api(conf).post("/api/v1/auth/token/logoutall/" if everywhere else "/api/v1/auth/token/logout/")
        except CliError as exc:
            if exc.status != 401:
                raise
            dead = "the server no longer accepted the token (it had expired or was revoked)"
    removed = cfg.forget_token(conf.token)
    where = f"; removed from {removed}" if removed else ""
    if dead and everywhere:
        raise CliError(f"{dead}{where}, so it cannot revoke your other tokens: run `ruckus login`, then "
                       "`ruckus logout --all`", EXIT_AUTH)
    if dead:
        console.print(f"Logged out: {dead}{where}", highlight=False)
    elif everywhere:
        console.print(f"Logged out everywhere: every token of your user on {conf.server} is revoked{where}",
                      highlight=False)
    else:
        console.print(f"Logged out: the token is revoked on {conf.server}{where}", highlight=False)


@exits_on_error
def whoami(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Show who the server takes you for: user, role, permissions and when your token expires."""
    api = connect(server, token)
    user = api.get("/api/v1/auth/me/")
    expiry = api.config.expiry if api.config.stored else None
    expiry_shown = expiry_text(expiry) if api.config.stored else "unknown (token from --token or RUCKUS_TOKEN)"
    if as_json:
        print_json({**user, "server": api.config.server,
                    "token_expiry": expiry if api.config.stored else None})
        return
    permissions = user.get("permissions") or {}
    name = " ".join(part for part in (user.get("first_name"), user.get("last_name")) if part)
    rows: list[list[Any]] = [
        ["user", user["username"] + (f" ({name})" if name else "")],
        ["email", user.get("email") or "—"],
        ["role", role_text(user)],
        *[[key, f"{'yes' if permissions.get(key) else 'no'}: {text}"] for key, text in PERMISSION_NAMES.items()],
        ["staff", "yes" if user.get("is_staff") else "no"],
        ["server", api.config.server],
        ["token expires", expiry_shown],
    ]
    print_table(f"Logged in as {user['username']}", ["field", "value"], rows)
