"""Where the CLI finds the server URL and token: flags, then environment, then the config file.

The config file (``~/.config/ruckus/config.toml``, or ``$RUCKUS_CONFIG``) is written by ``ruckus login``
with owner-only permissions because it holds an API token.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:8000"


def config_path() -> Path:
    """Path of the config file (``$RUCKUS_CONFIG`` overrides the default location)."""
    override = os.environ.get("RUCKUS_CONFIG")
    if override:
        return Path(override)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "ruckus" / "config.toml"


@dataclass
class Config:
    """Resolved connection settings.

    Attributes:
        server: Server base URL.
        token: API token (None when not logged in).
    """

    server: str
    token: str | None


def load(server: str | None = None, token: str | None = None) -> Config:
    """Resolve settings: explicit values, then ``RUCKUS_SERVER``/``RUCKUS_TOKEN``, then the config file.

    Args:
        server: ``--server`` flag value.
        token: ``--token`` flag value.

    Returns:
        The configuration.
    """
    stored: dict[str, str] = {}
    path = config_path()
    if path.is_file():
        stored = tomllib.loads(path.read_text())
    return Config(
        server=(server or os.environ.get("RUCKUS_SERVER") or stored.get("server") or DEFAULT_SERVER).rstrip("/"),
        token=token or os.environ.get("RUCKUS_TOKEN") or stored.get("token"),
    )


def save(server: str, token: str) -> Path:
    """Write the config file (mode 0600).

    Args:
        server: Server base URL.
        token: API token.

    Returns:
        The file written.
    """
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON string escapes are valid TOML basic-string escapes, so json.dumps quotes safely.
    text = f"server = {json.dumps(server)}\ntoken = {json.dumps(token)}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path
