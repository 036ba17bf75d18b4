"""A small network lab for multi-process tests: every agent on its own "host" (a Linux network namespace).

Topology of one :class:`NetLab`::

    root namespace (the test process, the RUCKUS server)    198.18.X.1/24 on bridge rklb-<id>
      |-- rklv-<id>-0 == eth0 in namespace rkl-<id>-0        198.18.X.10/24, default route via 198.18.X.1
      |-- rklv-<id>-1 == eth0 in namespace rkl-<id>-1        198.18.X.11/24
      ...

Addresses come from 198.18.0.0/15 (reserved for benchmarking, RFC 2544), so test traffic never leaves the machine:
it goes only to loopback or to namespaces the lab made itself. ``X`` is picked, under a machine-wide lock, so that
no address or more specific route of the machine overlaps the lab's /24 (two labs in parallel processes differ).

Faults:

* :meth:`NetLab.partition` pulls a host's cable: bridge-family nftables rules in the root namespace drop every frame
  from and to the host's bridge port. Neither end sees anything happen (no carrier change, no error on send,
  sockets and conntrack untouched), so an established TCP connection only retransmits and survives a short cut,
  while new connections time out. Dropping inside the namespace instead would make the host's own kernel refuse
  its sends (``EPERM`` from an output-hook drop), and taking the link down would drop carrier on both ends; a real
  network does neither.
* :meth:`NetLab.block_inbound` puts the host behind a NAT: an inet-family table inside its namespace drops
  connection attempts from outside (TCP SYNs without ACK; new non-TCP flows by conntrack); its own outbound
  connections and their replies pass, and so does the namespace's own loopback.

Names share the prefix ``rkl`` (namespaces ``rkl-<id>-<i>``, links ``rklb-<id>``/``rklv-<id>-<i>``, the nftables
table ``bridge rkl_<id>``). A live lab holds an ``flock`` on ``<state dir>/<id>.lock``; :func:`cleanup_stale` (run
by every new lab) removes objects whose lock nobody holds, i.e. the leftovers of a killed test process.

Notes on the kernel set-up (nothing is changed machine-wide):

* Traffic between the root namespace and a host is *local* delivery on the bridge (INPUT/OUTPUT), never FORWARD,
  so ``net.ipv4.ip_forward=0`` and an iptables ``FORWARD`` policy of DROP (Docker hosts) do not matter, even with
  ``br_netfilter`` loaded and ``net.bridge.bridge-nf-call-iptables=1``. Traffic between two lab hosts *is*
  bridged and goes through the iptables FORWARD chain in that case, so it can be dropped on Docker hosts; tests
  should not rely on host-to-host traffic.
* Reverse-path filtering passes: each side's route back to the sender is the interface the packet came in on.
* The lab checks at start-up that every host reaches the server address over TCP, and raises
  :class:`NetLabUnavailable` with the reason when it does not (e.g. a host firewall dropping INPUT).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pytest

#: Every object of every lab starts with this (see :func:`cleanup_stale`).
PREFIX = "rkl"
#: Labs pick their /24 inside this block (RFC 2544 benchmarking addresses).
ADDRESS_BLOCK = ipaddress.IPv4Network("198.18.0.0/15")
#: Hosts get .10, .11, ... in the lab's /24.
FIRST_HOST_OCTET = 10
MAX_HOSTS = 200
#: Table inside a blocked host's namespace (the namespace is the lab's own, so a fixed name is enough).
INBOUND_TABLE = f"{PREFIX}_inbound"
#: Environment variable that turns "namespaces unavailable" from a skip into a failure (CI sets it).
REQUIRE_ENV = "RUCKUS_REQUIRE_NETNS"
#: Seconds a single ``ip``/``nft`` command may take.
COMMAND_TIMEOUT_S = 15.0
#: Seconds between SIGTERM and SIGKILL when the lab stops its processes.
TERM_GRACE_S = 2.0

_NETNS_RE = re.compile(rf"^{PREFIX}-([0-9a-f]{{4}})-\d+$")
_LINK_RE = re.compile(rf"^{PREFIX}[bvp]-([0-9a-f]{{4}})(?:-\d+)?$")
_TABLE_RE = re.compile(rf"^{PREFIX}_([0-9a-f]{{4}})$")


class NetLabUnavailable(Exception):
    """Network namespaces (or the tools to set them up) are not usable here; the message says why."""


class NetLabError(RuntimeError):
    """A command of the lab failed although namespaces are available (a bug or a broken machine)."""


@dataclass(frozen=True)
class Host:
    """One simulated host: a network namespace with one interface on the lab's bridge.

    Attributes:
        name: The name the test uses for it.
        index: Position in the lab (the address is ``.10 + index``).
        namespace: Name of the network namespace (for ``ip netns exec``).
        address: IPv4 address of ``eth0`` inside the namespace.
        veth_host: Name of the root-namespace end of its veth pair (a port of the bridge).
    """

    name: str
    index: int
    namespace: str
    address: str
    veth_host: str


def _run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a short administration command (``ip``, ``nft``) and raise :class:`NetLabError` when it fails.

    Args:
        argv: The command.
        stdin: Text fed to its standard input (``nft -f -`` scripts).
        check: Raise when the exit status is not 0.

    Returns:
        The completed process, output captured as text.

    Raises:
        NetLabError: The command failed (with its stderr) or took longer than :data:`COMMAND_TIMEOUT_S`.
    """
    try:
        result = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                                check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NetLabError(f"{' '.join(argv)}: {e}") from e
    if check and result.returncode != 0:
        raise NetLabError(f"{' '.join(argv)} exited with {result.returncode}: {result.stderr.strip()}")
    return result


def _state_dir() -> Path:
    """Directory of the labs' lock files: machine-wide (``/run``) so that every process sees every lab."""
    for base in (Path("/run"), Path(tempfile.gettempdir())):
        path = base / "ruckus-netlab"
        try:
            path.mkdir(mode=0o755, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return path
    raise NetLabUnavailable("no writable directory for the lab's lock files (/run or the temp dir)")


@contextlib.contextmanager
def _allocation_lock(state_dir: Path) -> Iterator[None]:
    """Hold the machine-wide lock under which labs pick ids and subnets and clean up stale ones."""
    with open(state_dir / ".alloc.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _list_netns() -> list[str]:
    """Names of the named network namespaces (``ip netns list``)."""
    out = _run(["ip", "-j", "netns", "list"]).stdout.strip()
    # Without any namespace, some iproute2 versions print nothing and others "null".
    return [entry["name"] for entry in (json.loads(out) or [])] if out else []


def _list_links() -> list[str]:
    """Names of the links of the root namespace."""
    return [entry["ifname"] for entry in json.loads(_run(["ip", "-j", "link", "show"]).stdout or "[]")]


def _list_bridge_tables() -> list[str]:
    """Names of the bridge-family nftables tables of the root namespace (none when ``nft`` is missing)."""
    if shutil.which("nft") is None:
        return []
    out = _run(["nft", "list", "tables", "bridge"], check=False).stdout
    return [line.split()[2] for line in out.splitlines() if line.startswith("table bridge ")]


def _kill_netns_processes(namespace: str) -> None:
    """SIGKILL every process still inside a namespace (``ip netns pids`` matches by namespace, never by name)."""
    result = _run(["ip", "netns", "pids", namespace], check=False)
    for pid in result.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def _remove_objects(lab_id: str, netns: Sequence[str], links: Sequence[str], tables: Sequence[str]) -> list[str]:
    """Delete a lab's nftables table, links and namespaces (those that exist); return what failed."""
    failures: list[str] = []
    name = f"{PREFIX}_{lab_id}"
    if name in tables:
        r = _run(["nft", "delete", "table", "bridge", name], check=False)
        if r.returncode != 0:
            failures.append(f"nft table {name}: {r.stderr.strip()}")
    # Deleting the root end of a veth pair deletes its peer; the bridge goes last among the links.
    own_links = [link for link in links if (m := _LINK_RE.match(link)) and m.group(1) == lab_id]
    for link in sorted(own_links, key=lambda n: n.startswith(f"{PREFIX}b-")):
        r = _run(["ip", "link", "del", link], check=False)
        if r.returncode != 0 and "Cannot find device" not in r.stderr:
            failures.append(f"link {link}: {r.stderr.strip()}")
    for ns in netns:
        m = _NETNS_RE.match(ns)
        if m and m.group(1) == lab_id:
            _kill_netns_processes(ns)
            r = _run(["ip", "netns", "del", ns], check=False)
            if r.returncode != 0 and "No such file" not in r.stderr:
                failures.append(f"netns {ns}: {r.stderr.strip()}")
    return failures


def cleanup_stale() -> list[str]:
    """Remove what labs of dead processes left behind (namespaces, links, nftables tables, lock files).

    A lab is stale when nobody holds the ``flock`` on its lock file (the kernel releases it when its process dies,
    even by SIGKILL) or when it has no lock file at all. Labs of live processes are left alone.

    Returns:
        The ids of the labs removed.

    Raises:
        NetLabError: Removing a stale object failed.
    """
    if shutil.which("ip") is None:
        return []
    state_dir = _state_dir()
    removed: list[str] = []
    with _allocation_lock(state_dir):
        netns, links, tables = _list_netns(), _list_links(), _list_bridge_tables()
        ids = {m.group(1) for n in netns if (m := _NETNS_RE.match(n))}
        ids |= {m.group(1) for n in links if (m := _LINK_RE.match(n))}
        ids |= {m.group(1) for n in tables if (m := _TABLE_RE.match(n))}
        ids |= {p.stem for p in state_dir.glob("*.lock") if re.fullmatch(r"[0-9a-f]{4}", p.stem)}
        failures: list[str] = []
        for lab_id in sorted(ids):
            lock_path = state_dir / f"{lab_id}.lock"
            with open(lock_path, "a") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live lab
                failures += _remove_objects(lab_id, netns, links, tables)
                lock_path.unlink(missing_ok=True)
            removed.append(lab_id)
        if failures:
            raise NetLabError("could not remove stale lab objects: " + "; ".join(failures))
    return removed


def _pick_subnet(hint: int) -> ipaddress.IPv4Network:
    """A /24 of :data:`ADDRESS_BLOCK` that no address or more specific route of the machine overlaps.

    Args:
        hint: Where to start probing (the pid spreads parallel labs; the allocation lock makes it exact).

    Returns:
        The subnet.

    Raises:
        NetLabError: Every /24 of the block is in use.
    """
    used: list[ipaddress.IPv4Network] = []
    for entry in json.loads(_run(["ip", "-j", "-4", "addr", "show"]).stdout or "[]"):
        for info in entry.get("addr_info", []):
            used.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    for route in json.loads(_run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]"):
        dst = route.get("dst", "default")
        if dst == "default":
            continue
        net = ipaddress.IPv4Network(dst, strict=False)
        # A less specific route (a VPN's fake-IP /15, say) loses to the lab's /24, so only more specific ones clash.
        if net.prefixlen >= 24:
            used.append(net)
    subnets = list(ADDRESS_BLOCK.subnets(new_prefix=24))
    for k in range(len(subnets)):
        candidate = subnets[(hint + k) % len(subnets)]
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise NetLabError(f"every /24 of {ADDRESS_BLOCK} is in use on this machine")


def _random_mac() -> str:
    """A random locally administered unicast MAC address."""
    octets = bytearray(secrets.token_bytes(6))
    octets[0] = (octets[0] & 0xFC) | 0x02
    return ":".join(f"{o:02x}" for o in octets)


class NetLab:
    """Hosts in network namespaces on one bridge, with the root namespace as the server host.

    Use it as a context manager (or call :meth:`close`); it is also closed at interpreter exit.

    Attributes:
        lab_id: Four hex digits shared by the names of the lab's objects.
        subnet: The lab's /24.
        server_address: Address of the root namespace on the bridge (where the RUCKUS server listens).
        bridge: Name of the bridge in the root namespace.
        hosts: The hosts by name, in creation order.
    """

    def __init__(self, hosts: int | Sequence[str]) -> None:
        """Create the bridge, the namespaces and their links, and check that traffic flows.

        Args:
            hosts: How many hosts (named ``host0``, ``host1``, ...) or their names.

        Raises:
            NetLabUnavailable: Namespaces, bridges or nftables cannot be used here (not root, no CAP_NET_ADMIN,
                a tool or kernel feature missing), or traffic does not flow between the root namespace and a host.
            NetLabError: Another set-up command failed.
            ValueError: Bad host names or count.
        """
        names = [f"host{i}" for i in range(hosts)] if isinstance(hosts, int) else list(hosts)
        if not 1 <= len(names) <= MAX_HOSTS or len(set(names)) != len(names):
            raise ValueError(f"need 1 to {MAX_HOSTS} distinct host names, got {names!r}")
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                raise NetLabUnavailable(f"`{tool}` is not installed (apt-get install iproute2 nftables)")
        self._owner_pid = os.getpid()
        self._closed = False
        self._procs: list[tuple[subprocess.Popen[Any], bool]] = []
        self._cut: set[str] = set()
        self._blocked: set[str] = set()
        self.hosts: dict[str, Host] = {}
        self._lock_file: IO[str] | None = None

        state_dir = _state_dir()
        cleanup_stale()
        with _allocation_lock(state_dir):
            taken = {p.stem for p in state_dir.glob("*.lock")}
            lab_id = next((i for i in (secrets.token_hex(2) for _ in range(1000)) if i not in taken), None)
            if lab_id is None:
                raise NetLabError(f"no free lab id: {len(taken)} labs in {state_dir}")
            self.lab_id = lab_id
            self._lock_path = state_dir / f"{self.lab_id}.lock"
            self._lock_file = open(self._lock_path, "a")  # noqa: SIM115 - held for the lab's lifetime
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            atexit.register(self.close)
            self.bridge = f"{PREFIX}b-{self.lab_id}"
            self._table = f"{PREFIX}_{self.lab_id}"
            try:
                self.subnet = _pick_subnet(os.getpid())
                self.server_address = str(self.subnet.network_address + 1)
                self._create_bridge()
            except BaseException:
                self.close()
                raise
        try:
            for index, name in enumerate(names):
                self._create_host(index, name)
            self._check_traffic()
        except BaseException:
            self.close()
            raise

    # -- set-up -------------------------------------------------------------------------------------------------

    def _create_bridge(self) -> None:
        """Create the bridge with the server address, and the table holding the partition rules.

        The first privileged commands run here, so their failures mean "unavailable", not "broken".
        """
        try:
            # forward_delay 0 and STP off: a new port forwards at once instead of listening/learning first.
            _run(["ip", "link", "add", self.bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0"])
        except NetLabError as e:
            raise NetLabUnavailable(f"cannot create a bridge (need root or CAP_NET_ADMIN): {e}") from e
        # A fixed MAC: otherwise the bridge takes its lowest port's MAC, which changes as hosts are added.
        _run(["ip", "link", "set", self.bridge, "address", _random_mac()])
        _run(["ip", "addr", "add", f"{self.server_address}/24", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])
        # Bridge-family hooks see the frames of each port: input (port -> root namespace), output (root
        # namespace -> port) and forward (port -> port). A port in the set `cut` is unplugged.
        script = f"""
table bridge {self._table} {{
    set cut {{ type ifname; }}
    chain input {{ type filter hook input priority 0; policy accept; iifname @cut drop; }}
    chain output {{ type filter hook output priority 0; policy accept; oifname @cut drop; }}
    chain forward {{ type filter hook forward priority 0; policy accept; iifname @cut drop; oifname @cut drop; }}
}}
"""
        try:
            _run(["nft", "-f", "-"], stdin=script)
        except NetLabError as e:
            raise NetLabUnavailable(f"nftables (bridge family) is not usable: {e}") from e

    def _create_host(self, index: int, name: str) -> None:
        """Create one host's namespace and veth pair, address it and route it via the server address."""
        ns = f"{PREFIX}-{self.lab_id}-{index}"
        veth, peer = f"{PREFIX}v-{self.lab_id}-{index}", f"{PREFIX}p-{self.lab_id}-{index}"
        address = str(self.subnet.network_address + FIRST_HOST_OCTET + index)
        try:
            _run(["ip", "netns", "add", ns])
        except NetLabError as e:
            if index == 0:
                raise NetLabUnavailable(f"cannot create a network namespace: {e}") from e
            raise
        host = Host(name=name, index=index, namespace=ns, address=address, veth_host=veth)
        self.hosts[name] = host
        _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", peer, "netns", ns])
        _run(["ip", "link", "set", veth, "master", self.bridge, "up"])
        _run(["ip", "-n", ns, "link", "set", peer, "name", "eth0"])
        _run(["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0"])
        _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _run(["ip", "-n", ns, "route", "add", "default", "via", self.server_address])

    def _check_traffic(self) -> None:
        """Connect from every host to a listener on the server address (both directions of TCP must pass).

        Raises:
            NetLabUnavailable: A host could not connect (a firewall of the machine drops the lab's traffic).
        """
        code = (
            "import socket, sys\n"
            "socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()\n"
        )
        with socket.create_server((self.server_address, 0), backlog=len(self.hosts) + 1) as listener:
            port = listener.getsockname()[1]
            procs = {
                h.name: self.popen(h.name, [sys.executable, "-c", code, self.server_address, str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                for h in self.hosts.values()
            }
            failures = []
            for name, proc in procs.items():
                try:
                    _, err = proc.communicate(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    _, err = proc.communicate()
                if proc.returncode != 0:
                    failures.append(f"{name}: {err.decode(errors='replace').strip()[-300:]}")
        if failures:
            raise NetLabUnavailable(
                f"TCP from the lab's namespaces to {self.server_address} does not pass (a firewall?): "
                + "; ".join(failures)
            )

    # -- running programs on hosts -------------------------------------------------------------------------------

    def host(self, host: str | Host) -> Host:
        """The :class:`Host` of a name (a :class:`Host` is returned as it is).

        Raises:
            KeyError: No host has that name.
        """
        return host if isinstance(host, Host) else self.hosts[host]

    def netns_argv(self, host: str | Host, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside the host's namespace."""
        return ["ip", "netns", "exec", self.host(host).namespace, *argv]

    def popen(self, host: str | Host, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start a program inside the host's namespace; :meth:`close` kills it if it still runs.

        ``ip netns exec`` replaces itself with the program, so the returned process is the program itself.

        Args:
            host: The host (name or :class:`Host`).
            argv: The program and its arguments.
            **popen_kwargs: Passed to :class:`subprocess.Popen`; ``start_new_session`` defaults to ``True`` so that
                ``os.killpg(proc.pid, sig)`` reaches the program and its children.

        Returns:
            The process.
        """
        popen_kwargs.setdefault("start_new_session", True)
        proc = subprocess.Popen(self.netns_argv(host, argv), **popen_kwargs)
        self._procs.append((proc, bool(popen_kwargs["start_new_session"])))
        return proc

    def run(self, host: str | Host, argv: Sequence[str], *, timeout: float = 30.0,
            **run_kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run a short program inside the host's namespace and wait for it.

        Args:
            host: The host (name or :class:`Host`).
            argv: The program and its arguments.
            timeout: Seconds before the program is killed and :class:`subprocess.TimeoutExpired` raised.
            **run_kwargs: Passed to :func:`subprocess.run`; output is captured as text unless ``stdout``/``stderr``
                are given; ``check`` defaults to ``False``.

        Returns:
            The completed process.
        """
        if "stdout" not in run_kwargs and "stderr" not in run_kwargs:
            run_kwargs.setdefault("capture_output", True)
        run_kwargs.setdefault("text", True)
        run_kwargs.setdefault("check", False)
        return subprocess.run(self.netns_argv(host, argv), timeout=timeout, **run_kwargs)

    # -- faults --------------------------------------------------------------------------------------------------

    def partition(self, host: str | Host) -> None:
        """Cut the host off: every frame from and to it is dropped, both ways, until :meth:`heal`. Idempotent.

        Sockets on both sides keep their state: established TCP connections retransmit and carry on after a
        short cut; new connections time out (after the ARP entry expires, about 20 s or more, they may fail
        with "No route to host" instead).
        """
        veth = self.host(host).veth_host
        # Adding an element that is already in the set is not an error, so this is idempotent by itself.
        _run(["nft", "add", "element", "bridge", self._table, "cut", f'{{ "{veth}" }}'])
        self._cut.add(veth)

    def heal(self, host: str | Host) -> None:
        """Plug the host back in (undo :meth:`partition`). Idempotent."""
        veth = self.host(host).veth_host
        r = _run(["nft", "delete", "element", "bridge", self._table, "cut", f'{{ "{veth}" }}'], check=False)
        if r.returncode != 0 and "No such file or directory" not in r.stderr:
            raise NetLabError(f"heal {veth}: {r.stderr.strip()}")
        self._cut.discard(veth)

    def is_partitioned(self, host: str | Host) -> bool:
        """Whether :meth:`partition` cut the host off (and :meth:`heal` has not undone it)."""
        return self.host(host).veth_host in self._cut

    def block_inbound(self, host: str | Host) -> None:
        """Put the host behind a NAT: new connections from outside are dropped, its own ones work. Idempotent.

        Rules in the host's namespace, on packets arriving from outside (its loopback is not touched):

        * TCP: a SYN without ACK (a connection attempt) is dropped, every other TCP packet passes. Stateless on
          purpose: the namespace's conntrack only starts when a ``ct`` rule is loaded, and a connection it did
          not see open would be picked up mid-stream as ``new`` and dropped; this way connections opened before
          the call, in either direction, carry on, and the replies of the host's own connections (SYN+ACK) pass.
        * Other protocols: conntrack ``established,related`` (replies to the host's own traffic, ICMP errors)
          passes, ``new`` (a ping, a UDP request) is dropped.

        Dropping rather than rejecting matches a NAT: the connecting side sees a timeout.
        """
        # "Add an empty table, delete it, create it" in one transaction replaces the table whether or not it
        # existed, so repeated calls leave exactly one copy of the rules.
        script = f"""
table inet {INBOUND_TABLE} {{}}
delete table inet {INBOUND_TABLE}
table inet {INBOUND_TABLE} {{
    chain input {{
        type filter hook input priority 0; policy accept;
        iif "lo" accept
        tcp flags & (syn | ack) == syn drop
        meta l4proto tcp accept
        ct state established,related accept
        ct state new drop
    }}
}}
"""
        self._nft_in(host, script)
        self._blocked.add(self.host(host).name)

    def allow_inbound(self, host: str | Host) -> None:
        """Undo :meth:`block_inbound`. Idempotent."""
        self._nft_in(host, f"table inet {INBOUND_TABLE} {{}}\ndelete table inet {INBOUND_TABLE}\n")
        self._blocked.discard(self.host(host).name)

    def _nft_in(self, host: str | Host, script: str) -> None:
        """Run an ``nft`` script inside the host's namespace."""
        _run(["ip", "netns", "exec", self.host(host).namespace, "nft", "-f", "-"], stdin=script)

    # -- tear-down -----------------------------------------------------------------------------------------------

    def _stop_processes(self) -> None:
        """SIGTERM the processes started with :meth:`popen` that still run, SIGKILL them after a grace period."""
        alive = [(p, group) for p, group in self._procs if p.poll() is None]

        def signal_all(sig: int) -> None:
            for proc, group in alive:
                # Only groups whose leader is alive (not yet reaped by us): the id cannot have been reused.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if group and proc.poll() is None:
                        os.killpg(proc.pid, sig)
                    elif proc.poll() is None:
                        proc.send_signal(sig)

        signal_all(signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE_S
        while any(p.poll() is None for p, _ in alive) and time.monotonic() < deadline:
            time.sleep(0.05)
        signal_all(signal.SIGKILL)
        for proc, _ in alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def close(self) -> None:
        """Kill the lab's processes and delete its namespaces, links and nftables table. Idempotent.

        Also kills whatever else still runs in the namespaces (``ip netns pids``). Does nothing in a forked child
        of the process that made the lab.

        Raises:
            NetLabError: Some object could not be deleted (all others are deleted anyway).
        """
        if self._closed or os.getpid() != self._owner_pid:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._stop_processes()
        failures: list[str] = []
        if self._lock_file is not None:
            try:
                failures = _remove_objects(self.lab_id, _list_netns(), _list_links(), _list_bridge_tables())
            finally:
                # The lock file goes only once the objects are gone, so no other process takes them for stale
                # while they are still being deleted.
                self._lock_path.unlink(missing_ok=True)
                self._lock_file.close()
                self._lock_file = None
        if failures:
            raise NetLabError("could not remove: " + "; ".join(failures))

    def __enter__(self) -> NetLab:
        """Return the lab (already set up by the constructor)."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Close the lab."""
        self.close()


def netlab_or_skip(hosts: int | Sequence[str]) -> NetLab:
    """A :class:`NetLab`, or skip the calling test when namespaces are unavailable here.

    With ``RUCKUS_REQUIRE_NETNS=1`` (CI) an unavailable lab fails the test instead, so that a broken runner
    cannot silently skip every network test.

    Args:
        hosts: Passed to :class:`NetLab`.

    Returns:
        The lab; the caller closes it (``with netlab_or_skip(2) as lab:``).
    """
    try:
        return NetLab(hosts)
    except NetLabUnavailable as e:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"network namespaces are required ({REQUIRE_ENV}=1) but unavailable: {e}", pytrace=False)
        pytest.skip(f"network namespaces unavailable: {e}")
