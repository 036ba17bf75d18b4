"""Where the CLI finds the server URL and token: flags, then environment, then the config file.

The config file (``~/.config/ruckus/config.toml``, or ``$RUCKUS_CONFIG``) is written by ``ruckus login``
with owner-only permissions because it holds an API token. Next to the token it keeps the token's expiry
(``token_expiry``, an ISO 8601 time; absent for a token that never expires), so that a token known to have
expired is reported before any request is sent; ``ruckus logout`` removes both.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_SERVER = "http://127.0.0.1:8000"
#: Keys of the config file that belong to the stored token.
TOKEN_KEYS = ("token", "token_expiry")


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
        expiry: When the token stops working (ISO 8601), when known: only for the token stored by ``ruckus login``
            (a token given by ``--token`` or ``RUCKUS_TOKEN`` has no known expiry).
        stored: Whether the token is the one in the config file.
    """

    server: str
    token: str | None
    expiry: str | None = None
    stored: bool = False

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the token is known to have expired.

        Args:
            now: The current time (default: now).

        Returns:
            True when the token has a known expiry that has passed.
        """
        moment = parse_time(self.expiry)
        return moment is not None and moment <= (now or datetime.now(UTC))


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time as an aware datetime (UTC when it names no zone), or None when absent or unreadable.

    Args:
        value: The text.

    Returns:
        The time, or None.
    """
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_stored() -> dict[str, Any]:
    """The config file's settings (empty when there is no file).

    Returns:
        The file's keys and values.
    """
    path = config_path()
    return tomllib.loads(path.read_text()) if path.is_file() else {}


def load(server: str | None = None, token: str | None = None) -> Config:
    """Resolve settings: explicit values, then ``RUCKUS_SERVER``/``RUCKUS_TOKEN``, then the config file.

    Args:
        server: ``--server`` flag value.
        token: ``--token`` flag value.

    Returns:
        The configuration.
    """
    stored = read_stored()
    given = token or os.environ.get("RUCKUS_TOKEN")
    from_file = not given and bool(stored.get("token"))
    return Config(
        server=(server or os.environ.get("RUCKUS_SERVER") or stored.get("server") or DEFAULT_SERVER).rstrip("/"),
        token=given or stored.get("token"),
        expiry=stored.get("token_expiry") if from_file else None,
        stored=from_file,
    )


def _write(values: dict[str, Any]) -> Path:
    """Write the config file (mode 0600) with string values."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON string escapes are valid TOML basic-string escapes, so json.dumps quotes safely.
    text = "".join(f"{key} = {json.dumps(str(value))}\n" for key, value in values.items() if value is not None)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def save(server: str, token: str, expiry: str | None = None) -> Path:
    """Write the config file (mode 0600): the server, the token and its expiry.

    Args:
        server: Server base URL.
        token: API token.
        expiry: When the token expires (ISO 8601), or None for a token that does not.

    Returns:
        The file written.
    """
    return _write({"server": server, "token": token, "token_expiry": expiry})


def forget_token(token: str | None = None) -> Path | None:
    """Remove the stored token and its expiry from the config file, keeping the server URL.

    Args:
        token: Remove only when this is the stored token (None: whatever token is stored).

    Returns:
        The file rewritten, or None when it held no (such) token.
    """
    stored = read_stored()
    if not stored.get("token") or (token is not None and stored.get("token") != token):
        return None
    return _write({key: value for key, value in stored.items() if key not in TOKEN_KEYS})
