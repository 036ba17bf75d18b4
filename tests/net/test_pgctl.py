"""The controllable Postgres: committed data survives a SIGKILL of the server; connections do not."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from tests.netlab import netlab_or_skip
from tests.pgctl import PgServer, _bin_dir, cleanup_stale

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg() -> Iterator[PgServer]:
    """A started private server on loopback."""
    with PgServer() as server:
        yield server


def test_committed_rows_survive_kill9_and_restart_on_the_same_port(pg: PgServer) -> None:
    url = pg.create_database("crash_me")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v text)")
        conn.execute("INSERT INTO t VALUES ('committed')")
    before = psycopg.connect(url, autocommit=True)
    port, old_pid = pg.port, pg.pid
    try:
        pg.kill9()
        assert not pg.running
        with pytest.raises(psycopg.OperationalError):
            before.execute("SELECT 1")

        pg.restart()
        assert pg.port == port and pg.pid != old_pid
        with psycopg.connect(url, connect_timeout=5) as conn:
            assert conn.execute("SELECT v FROM t").fetchall() == [("committed",)]
        assert "automatic recovery in progress" in pg.log_tail(20000)
    finally:
        before.close()


def test_stop_restart_and_close() -> None:
    server = PgServer()
    server.start()
    server.start()  # already running: nothing happens
    server.stop()
    assert not server.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.url(), connect_timeout=2)
    server.restart()
    with psycopg.connect(server.url(), connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    root = server.root
    server.close()
    server.close()  # idempotent
    assert not server.running and not root.exists()


def test_listens_on_a_lab_bridge_address_for_the_hosts() -> None:
    with netlab_or_skip(1) as lab, PgServer(["127.0.0.1", lab.server_address]) as server:
        with psycopg.connect(server.url(host=lab.server_address), connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        ready = lab.run("host0", [str(_bin_dir() / "pg_isready"), "-h", lab.server_address, "-p", str(server.port),
                                  "-t", "5"])
        assert ready.returncode == 0, ready.stdout + ready.stderr


def test_cleanup_stale_kills_the_server_of_a_killed_test_process() -> None:
    code = (
        "import os, signal\n"
        "from tests.pgctl import PgServer\n"
        "server = PgServer()\n"
        "server.start()\n"
        "print(server.root, server.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == -9, result.stderr
    root, pid = result.stdout.split()
    # Another test process starting a server may clean up first, so only the outcome is checked.
    cleanup_stale()
    assert not Path(root).exists()
    assert not psutil.pid_exists(int(pid)) or psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE
