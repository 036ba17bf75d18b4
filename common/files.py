"""Atomic, durable file writes: a reader sees the old content or the new one, never half of either.

Each write goes to a temporary file in the destination's directory (so the final rename never crosses a
file system), is flushed and fsynced, then renamed over the destination with :func:`os.replace`; the
directory is fsynced too where the platform allows it, so the rename itself survives a power loss. When
anything fails, the temporary file is removed and the destination keeps its previous content.

Temporary files are named ``.<name>.<random>.tmp``: a crash may leave one behind, and a reader that
cleans its directory up (the agent's spool does) recognises them by that pattern.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: Permission bits of written files unless told otherwise: owner only, since the agent's files carry attempt
#: tokens and credentials.
PRIVATE_FILE_MODE = 0o600


def fsync_dir(path: Path | str) -> None:
    """Fsync a directory so that a rename or removal inside it survives a power loss.

    A no-op where directories cannot be opened or fsynced (Windows, some network file systems).

    Args:
        path: The directory.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes, *, mode: int = PRIVATE_FILE_MODE) -> None:
    """Write ``data`` to ``path`` atomically and durably, creating the parent directories.

    Args:
        path: Destination file.
        data: Bytes to write.
        mode: Permission bits of the file.

    Raises:
        OSError: When the file cannot be written; the destination then keeps its previous content and no
            temporary file is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        # BaseException too: a KeyboardInterrupt mid-write must not leave the temporary file behind.
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path | str, text: str, *, encoding: str = "utf-8", mode: int = PRIVATE_FILE_MODE) -> None:
    """Write ``text`` to ``path`` atomically and durably (see :func:`atomic_write_bytes`).

    Args:
        path: Destination file.
        text: Text to write.
        encoding: Text encoding.
        mode: Permission bits of the file.
    """
    atomic_write_bytes(path, text.encode(encoding), mode=mode)


def atomic_write_json(path: Path | str, data: Any, *, indent: int | None = None, mode: int = PRIVATE_FILE_MODE) -> None:
    """Write ``data`` as UTF-8 JSON to ``path`` atomically and durably (see :func:`atomic_write_bytes`).

    The data is serialized before anything touches the disk, so a value JSON cannot encode leaves the
    destination untouched.

    Args:
        path: Destination file.
        data: A JSON-serializable value.
        indent: Indentation for human-readable files; None for the compact form.
        mode: Permission bits of the file.

    Raises:
        TypeError: When ``data`` cannot be encoded as JSON.
    """
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=indent), mode=mode)
