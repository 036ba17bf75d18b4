"""``common.processes.Supervisor`` with real short-lived child processes (each test bounded in time)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.processes import ChildExited, StopRequested, Supervisor

pytestmark = pytest.mark.timeout(60)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a killed orphan may stay one under a container's init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def logged(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text()


def test_early_exit_is_reported_with_its_log_tail_and_the_others_are_stopped(tmp_path: Path):
    with Supervisor(stop_timeout=5) as sup:
        sleeper = sup.start("sleeper", SLEEPER)
        crasher = sup.start("crasher", py("import sys; print('starting'); print('boom', flush=True); sys.exit(3)"),
                            log_path=tmp_path / "crasher.log")
        exited = sup.wait(interval=0.05)
        assert exited is crasher and exited.returncode == 3
        assert exited.exit_report() == f"crasher exited with code 3; end of {tmp_path / 'crasher.log'}:\nstarting\nboom"
        assert exited.log_tail(lines=1) == "boom"
        assert sleeper.returncode is None
    assert sleeper.returncode == -signal.SIGTERM
    assert sleeper.exit_report() == f"sleeper exited with code {-signal.SIGTERM}"  # no log file: no tail


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_set_the_flag_and_stop_the_children(sig: signal.Signals):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with Supervisor(stop_timeout=5) as sup:
        child = sup.start("sleeper", SLEEPER)
        os.kill(os.getpid(), sig)  # no KeyboardInterrupt: the handler only sets the flag
        assert sup.wait(interval=0.05) is None and sup.stop_requested
        with pytest.raises(StopRequested):
            sup.check()
        with pytest.raises(StopRequested):
            sup.sleep(30)  # returns at once
    assert child.returncode == -signal.SIGTERM
    assert {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} == before


def test_a_child_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path):
    log = tmp_path / "stubborn.log"
    killed: list[str] = []
    with Supervisor(stop_timeout=0.5, on_kill=lambda c: killed.append(c.name)) as sup:
        polite = sup.start("polite", SLEEPER)
        stubborn = sup.start(
            "stubborn",
            py("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
               "time.sleep(60)"),
            log_path=log,
        )
        sup.wait_ready(stubborn, lambda: logged(log, "ready"), timeout=30, interval=0.05)
        started = time.monotonic()
    assert time.monotonic() - started < 5
    assert killed == ["stubborn"]
    assert stubborn.returncode == -signal.SIGKILL and polite.returncode == -signal.SIGTERM


def test_new_session_children_are_stopped_with_their_own_children(tmp_path: Path):
    log = tmp_path / "parent.log"
    code = ("import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print(p.pid, flush=True); time.sleep(60)")
    with Supervisor(stop_timeout=5, new_session=True) as sup:
        parent = sup.start("parent", py(code), log_path=log)
        sup.wait_ready(parent, lambda: logged(log, "\n"), timeout=30, interval=0.05)
        grandchild = int(log.read_text())
        assert os.getpgid(parent.process.pid) == parent.process.pid != os.getpgid(0)
        assert alive(grandchild)
    assert parent.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)


def test_wait_ready_child_exit_timeout_and_stop(tmp_path: Path):
    with Supervisor(stop_timeout=5) as sup:
        quitter = sup.start("quitter", py("import sys; print('bad config', flush=True); sys.exit(2)"),
                            log_path=tmp_path / "quitter.log")
        with pytest.raises(ChildExited) as exc_info:
            sup.wait_ready(quitter, lambda: False, timeout=30, interval=0.05)
        assert exc_info.value.child is quitter
        assert str(exc_info.value).startswith("quitter exited with code 2; end of")
        assert str(exc_info.value).endswith("bad config")

        sleeper = sup.start("sleeper", SLEEPER)
        with pytest.raises(TimeoutError, match="sleeper was not ready within 0 s"):
            sup.wait_ready(sleeper, lambda: False, timeout=0.3, interval=0.05)
        sup.wait_ready(sleeper, lambda: True, timeout=5)

        sup.request_stop()
        with pytest.raises(StopRequested):
            sup.wait_ready(sleeper, lambda: False, timeout=30)
    assert sleeper.returncode == -signal.SIGTERM


def test_run_a_step_to_completion_or_failure():
    with Supervisor(stop_timeout=5) as sup:
        sup.run("ok", py("pass"))
        with pytest.raises(subprocess.CalledProcessError) as exc_info:
            sup.run("fails", py("raise SystemExit(4)"))
        assert exc_info.value.returncode == 4
        assert sup.children == []  # finished steps are not children that "exited early"


def test_a_stop_request_interrupts_a_step():
    step_code = "import os, signal, time; os.kill(os.getppid(), signal.SIGINT); time.sleep(60)"
    with Supervisor(stop_timeout=5) as sup:
        with pytest.raises(StopRequested):
            sup.run("step", py(step_code))
        [step] = sup.children
        assert step.returncode is None
        started = time.monotonic()
    assert step.returncode == -signal.SIGTERM and time.monotonic() - started < 5

    with Supervisor(stop_timeout=5) as sup:
        sup.request_stop()
        with pytest.raises(StopRequested):
            sup.run("never", py("pass"))
        assert sup.children == []
