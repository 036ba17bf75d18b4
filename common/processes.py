"""A small supervisor for the child processes of a command: start them, wait for them, stop them all.

``ruckus server`` and ``manage.py demo`` each run a few long-lived processes (daphne, the scheduler, an agent)
and must stop every one of them, within a bounded time, on Ctrl-C or SIGTERM. :class:`Supervisor` does that
once for both:

* SIGINT and SIGTERM only set a flag (:attr:`Supervisor.stop_requested`). Raising ``KeyboardInterrupt`` from
  a signal handler can interrupt ``subprocess.Popen`` in the middle of its bookkeeping and leave it unable to
  wait for its child; a flag is checked at safe points instead (:meth:`Supervisor.check`,
  :meth:`Supervisor.sleep`, :meth:`Supervisor.wait`, :meth:`Supervisor.wait_ready`).
* Leaving the ``with`` block stops the children: SIGTERM to those still running, then SIGKILL to any still
  running ``stop_timeout`` seconds later.
* A child that ends while it should run is reported with its exit code and the end of its log file.

Standard library only: the CLI, which has no Django, uses it as well as the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

#: Longest sleep between two looks at the stop flag: how late a stop request may be noticed.
_FLAG_POLL_S = 0.1
#: Seconds to reap a child after SIGKILL (it cannot ignore it; this only bounds a pathological case).
_KILL_REAP_S = 5.0
#: The end of a log file that is read to report a child's exit.
_TAIL_BYTES = 64 * 1024


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived: the supervised command should stop what it is doing."""


class ChildExited(Exception):
    """A child process ended while it was expected to run.

    Args:
        child: The child that ended.
    """

    def __init__(self, child: Child) -> None:
        super().__init__(child.exit_report())
        self.child = child


@dataclass
class Child:
    """A started child process.

    Attributes:
        name: Name used in messages (``daphne``, ``scheduler``).
        process: The process.
        log_path: File receiving its stdout and stderr, or None when it writes to the supervisor's.
    """

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None

    @property
    def returncode(self) -> int | None:
        """Exit code, or None while it runs."""
        return self.process.poll()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of its log file ("" without a log file or when it cannot be read).

        Args:
            lines: How many lines.

        Returns:
            The lines, newline-separated.
        """
        if self.log_path is None:
            return ""
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(max(fh.seek(0, os.SEEK_END) - _TAIL_BYTES, 0))
                text = fh.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def exit_report(self, lines: int = 20) -> str:
        """Which child ended, with which code, and the end of its log.

        Args:
            lines: How many log lines to include.

        Returns:
            E.g. ``scheduler exited with code 1; end of logs/scheduler.log:`` followed by the lines.
        """
        report = f"{self.name} exited with code {self.returncode}"
        tail = self.log_tail(lines)
        return f"{report}; end of {self.log_path}:\n{tail}" if tail else report


class Supervisor:
    """Starts named child processes and stops them all, within a bounded time, when its ``with`` block ends.

    Use it from the main thread (signal handlers can only be installed there)::

        with Supervisor(stop_timeout=15) as supervisor:
            supervisor.start("daphne", [...])
            exited = supervisor.wait()  # None after Ctrl-C or SIGTERM, else the child that ended

    Args:
        stop_timeout: Seconds the children get, all together, to exit after SIGTERM before SIGKILL.
        new_session: Start each child in its own session and signal its whole process group (the child's
            own children too); otherwise children share the terminal's Ctrl-C and only they are signalled.
        on_kill: Called with a child that did not stop in time, just before it is killed.
    """

    def __init__(
        self, *, stop_timeout: float, new_session: bool = False, on_kill: Callable[[Child], None] | None = None
    ) -> None:
        self.stop_timeout = stop_timeout
        self.new_session = new_session
        self.on_kill = on_kill
        self.children: list[Child] = []
        self.stop_requested = False
        self._previous_handlers: dict[int, Any] = {}

    def __enter__(self) -> Supervisor:
        """Install the SIGINT and SIGTERM handlers."""
        # Both explicitly: a shell may start background commands with SIGINT ignored.
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop every child, then restore the previous signal handlers."""
        try:
            self.stop()
        finally:
            for sig, handler in self._previous_handlers.items():
                # None: the handler was not installed from Python; the default is the closest equivalent.
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)
            self._previous_handlers.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: only set the flag (see the module docstring)."""
        self.request_stop()

    def request_stop(self) -> None:
        """Ask the supervised command to stop, as SIGINT or SIGTERM do."""
        self.stop_requested = True

    def start(
        self, name: str, cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
        log_path: Path | None = None,
    ) -> Child:
        """Start a child process.

        Args:
            name: Name used in messages.
            cmd: Program and arguments.
            env: Environment (default: this process's).
            cwd: Working directory (default: this process's).
            log_path: File for its stdout and stderr (truncated first); None to share this process's.

        Returns:
            The child, stopped with the others when the supervisor's block ends.
        """
        if log_path is None:
            # Bandit B603: an argument list (no shell) that the caller builds from its settings, not from a request.
            process = subprocess.Popen(cmd, env=env, cwd=cwd, start_new_session=self.new_session)  # nosec B603
        else:
            with log_path.open("wb") as log:  # the child has its own copy of the descriptor
                # Bandit B603: as above.
                process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,  # nosec B603
                                           start_new_session=self.new_session)
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def run(self, name: str, cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        """Run a step to completion (its output shared with this process), stopping it on a stop request.

        Args:
            name: Name used in messages.
            cmd: Program and arguments.
            env: Environment (default: this process's).
            cwd: Working directory (default: this process's).

        Raises:
            StopRequested: On SIGINT or SIGTERM; the step is stopped with the other children.
            subprocess.CalledProcessError: When the step fails.
        """
        self.check()
        child = self.start(name, cmd, env=env, cwd=cwd)
        while child.returncode is None:
            self.sleep(_FLAG_POLL_S)
        self.children.remove(child)  # finished: not a child that "exited early" for wait()
        if child.returncode:
            raise subprocess.CalledProcessError(child.returncode, cmd)

    def check(self) -> None:
        """Raise :class:`StopRequested` if SIGINT or SIGTERM arrived."""
        if self.stop_requested:
            raise StopRequested

    def sleep(self, seconds: float) -> None:
        """Sleep, but raise :class:`StopRequested` as soon as a stop is requested.

        Args:
            seconds: How long.
        """
        self._pause(seconds)
        self.check()

    def wait_ready(self, child: Child, ready: Callable[[], bool], timeout: float, interval: float = 0.3) -> None:
        """Wait until ``ready()`` returns True (e.g. a health URL answers), while ``child`` runs.

        Args:
            child: The child that must keep running meanwhile.
            ready: Readiness check; it must not raise for "not yet".
            timeout: Seconds to wait.
            interval: Seconds between checks.

        Raises:
            StopRequested: On SIGINT or SIGTERM.
            ChildExited: When ``child`` ends first.
            TimeoutError: When it is not ready in time.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            if child.returncode is not None:
                raise ChildExited(child)
            if ready():
                return
            self._pause(interval)
        raise TimeoutError(f"{child.name} was not ready within {timeout:.0f} s")

    def wait(self, interval: float = 0.5) -> Child | None:
        """Wait until a stop is requested or a child ends.

        Args:
            interval: Seconds between looks at the children.

        Returns:
            None after SIGINT or SIGTERM, else the first child found ended (see :meth:`Child.exit_report`).
        """
        while not self.stop_requested:
            for child in self.children:
                if child.returncode is not None:
                    return child
            self._pause(interval)
        return None

    def stop(self) -> None:
        """Stop every child: SIGTERM, then SIGKILL for those still running after ``stop_timeout`` seconds."""
        for child in self.children:
            if child.returncode is None:
                self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in self.children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                if self.on_kill is not None:
                    self.on_kill(child)
                self._signal(child, signal.SIGKILL)
                with suppress(subprocess.TimeoutExpired):
                    child.process.wait(timeout=_KILL_REAP_S)

    def _signal(self, child: Child, sig: signal.Signals) -> None:
        """Send ``sig`` to a child, or to its process group when it has its own session."""
        if not self.new_session:
            child.process.send_signal(sig)
            return
        # The group outlives a leader that exited meanwhile only while members remain; none left is fine.
        with suppress(ProcessLookupError):
            os.killpg(child.process.pid, sig)

    def _pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``, returning early once a stop is requested."""
        end = time.monotonic() + seconds
        while not self.stop_requested and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, _FLAG_POLL_S))
