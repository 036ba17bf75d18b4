"""The network lab: hosts in namespaces reach the server host and back, partitions, NAT-like blocking, clean-up."""

from __future__ import annotations

import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import netlab
from tests.netlab import NetLab, NetLabUnavailable, netlab_or_skip

REPO = Path(__file__).resolve().parents[2]
#: Port of the echo servers inside the namespaces (each namespace has its own ports, so a fixed one is fine).
ECHO_PORT = 7000
ECHO_SERVER = """
import socket, sys, threading
srv = socket.create_server(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
def serve(conn):
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""
CONNECT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as s:
    s.sendall(b"x")
    assert s.recv(1) == b"x"
print("connected")
"""


@pytest.fixture
def lab() -> Iterator[NetLab]:
    """A lab with hosts ``a`` and ``b``."""
    with netlab_or_skip(["a", "b"]) as lab:
        yield lab


def start_echo(lab: NetLab, host: str) -> subprocess.Popen[bytes]:
    """Start a TCP echo server on port :data:`ECHO_PORT` of every address of ``host``; return once it listens."""
    proc = lab.popen(host, [sys.executable, "-c", ECHO_SERVER, str(ECHO_PORT)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    assert ready and proc.stdout.readline() == b"ready\n", f"echo server in {host} did not start"
    return proc


def echo(address: str, payload: bytes = b"hello", timeout: float = 5.0) -> bytes:
    """Send ``payload`` to the echo server at ``address`` over a new connection and return the answer."""
    with socket.create_connection((address, ECHO_PORT), timeout=timeout) as s:
        s.sendall(payload)
        return s.recv(len(payload))


def host_connects(lab: NetLab, host: str, address: str, port: int, timeout: float) -> bool:
    """Whether ``host`` can open a TCP connection to ``address:port`` and get one byte echoed (or accepted)."""
    result = lab.run(host, [sys.executable, "-c", CONNECT, address, str(port), str(timeout)], timeout=timeout + 15)
    return result.returncode == 0 and "connected" in result.stdout


class RootEcho:
    """A one-byte echo listener on the server address, answering in a thread (for connections from hosts)."""

    def __init__(self, lab: NetLab) -> None:
        self.sock = socket.create_server((lab.server_address, 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                data = conn.recv(1)
                if data:
                    conn.sendall(data)

    def close(self) -> None:
        self.sock.close()


def test_hosts_and_the_server_host_reach_each_other(lab: NetLab) -> None:
    a = lab.hosts["a"]
    assert a.address.startswith("198.18.") or a.address.startswith("198.19.")
    assert lab.server_address.rsplit(".", 1)[0] == a.address.rsplit(".", 1)[0]
    start_echo(lab, "a")
    assert echo(a.address) == b"hello"
    root = RootEcho(lab)
    try:
        assert host_connects(lab, "a", lab.server_address, root.port, timeout=5)
    finally:
        root.close()
    # Each host is its own machine: its eth0 carries its address, its loopback is its own.
    assert a.address in lab.run("a", ["ip", "-4", "addr", "show", "eth0"]).stdout
    assert host_connects(lab, "a", "127.0.0.1", ECHO_PORT, timeout=5)
    assert not host_connects(lab, "b", "127.0.0.1", ECHO_PORT, timeout=2)


@pytest.mark.slow
def test_partition_cuts_both_ways_and_established_connections_survive_a_short_cut(lab: NetLab) -> None:
    a, b = lab.hosts["a"], lab.hosts["b"]
    start_echo(lab, "a")
    start_echo(lab, "b")
    root = RootEcho(lab)
    conn = socket.create_connection((a.address, ECHO_PORT), timeout=5)
    try:
        conn.sendall(b"before")
        assert conn.recv(6) == b"before"

        lab.partition("a")
        lab.partition("a")  # idempotent
        cut_at = time.monotonic()
        assert lab.is_partitioned("a") and not lab.is_partitioned("b")
        conn.sendall(b"during")  # stays in the send queue, retransmitted after the heal
        with pytest.raises(TimeoutError):
            echo(a.address, timeout=1)
        assert not host_connects(lab, "a", lab.server_address, root.port, timeout=1)
        assert echo(b.address) == b"hello", "only the partitioned host is cut off"
        time.sleep(max(0.0, 3.0 - (time.monotonic() - cut_at)))

        lab.heal("a")
        lab.heal("a")  # idempotent
        assert not lab.is_partitioned("a")
        conn.settimeout(15)  # the next retransmission comes after the sender's back-off
        assert conn.recv(6) == b"during"
        conn.sendall(b"after")
        assert conn.recv(5) == b"after"
        assert echo(a.address) == b"hello"
        assert host_connects(lab, "a", lab.server_address, root.port, timeout=5)
    finally:
        conn.close()
        root.close()


def test_block_inbound_drops_new_connections_from_outside_only(lab: NetLab) -> None:
    a = lab.hosts["a"]
    start_echo(lab, "a")
    root = RootEcho(lab)
    before = socket.create_connection((a.address, ECHO_PORT), timeout=5)
    try:
        lab.block_inbound("a")
        lab.block_inbound("a")  # idempotent
        with pytest.raises(TimeoutError):
            echo(a.address, timeout=1)
        before.sendall(b"still")
        assert before.recv(5) == b"still", "connections opened before the block carry on"
        assert host_connects(lab, "a", lab.server_address, root.port, timeout=5), "outbound and replies pass"
        assert host_connects(lab, "a", "127.0.0.1", ECHO_PORT, timeout=5), "the host's loopback passes"

        lab.allow_inbound("a")
        lab.allow_inbound("a")  # idempotent
        assert echo(a.address) == b"hello"
    finally:
        before.close()
        root.close()


def _lab_objects(lab_id: str) -> list[str]:
    """Namespaces, links and nftables tables of the machine that belong to the lab ``lab_id``."""
    out = [
        subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout,
        subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True).stdout,
        subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout,
    ]
    mine = re.compile(rf"\b{netlab.PREFIX}[bvp]?[-_]{lab_id}\b")
    return [line for text in out for line in text.splitlines() if mine.search(line)]


def test_close_kills_processes_and_removes_namespaces_links_and_tables() -> None:
    lab = netlab_or_skip(2)
    sleeper = lab.popen("host0", ["sleep", "60"])
    lab.partition("host0")
    lab.block_inbound("host1")
    objects = _lab_objects(lab.lab_id)
    assert len(objects) == 2 + 3 + 1, objects  # 2 namespaces, bridge + 2 veths, 1 table
    lab.close()
    assert sleeper.poll() is not None
    assert _lab_objects(lab.lab_id) == []
    lab.close()  # idempotent


def test_cleanup_stale_removes_what_a_killed_process_left_and_spares_live_labs(lab: NetLab) -> None:
    code = (
        "import os, signal\n"
        "from tests.netlab import NetLab\n"
        "lab = NetLab(1)\n"
        "print(lab.lab_id, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                            check=False)
    stale_id = result.stdout.strip()
    assert result.returncode == -9 and stale_id, result.stderr
    # The killed process left its lab behind (no atexit ran). Another test process starting a lab may clean it up
    # first, so only the outcome is checked, not who removed it.
    netlab.cleanup_stale()
    assert _lab_objects(stale_id) == []
    assert len(_lab_objects(lab.lab_id)) == 2 + 3 + 1, "a live lab is not stale"


@pytest.mark.parametrize("required", [False, True])
def test_netlab_or_skip_skips_unless_namespaces_are_required(monkeypatch: pytest.MonkeyPatch, required: bool) -> None:
    def unavailable(hosts: object) -> NetLab:
        raise NetLabUnavailable("no CAP_NET_ADMIN here")

    monkeypatch.setattr(netlab, "NetLab", unavailable)
    if required:
        monkeypatch.setenv(netlab.REQUIRE_ENV, "1")
        with pytest.raises(pytest.fail.Exception, match="no CAP_NET_ADMIN here"):
            netlab_or_skip(1)
    else:
        monkeypatch.delenv(netlab.REQUIRE_ENV, raising=False)
        with pytest.raises(pytest.skip.Exception, match="no CAP_NET_ADMIN here"):
            netlab_or_skip(1)
