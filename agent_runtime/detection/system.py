"""Operating system, interpreter, container, memory and disk of the agent host."""

from __future__ import annotations

import os
import platform
import shutil
import socket
from pathlib import Path

from common.protocol import DiskInfo, MemoryInfo, SystemInfo

#: cgroup path fragments that name a container runtime.
_CGROUP_MARKERS = (
    ("docker", "docker"),
    ("kubepods", "kubernetes"),
    ("containerd", "containerd"),
    ("libpod", "podman"),
    ("lxc", "lxc"),
)


def detect_container(root: Path = Path("/")) -> str | None:
    """Name the container runtime the process runs in, if any.

    Args:
        root: Filesystem root to look under (replaceable in tests).

    Returns:
        ``docker``, ``podman``, ``kubernetes``, ``containerd``, ``lxc`` or ``container`` (inside one,
        runtime unknown); None on a plain host.
    """
    if (root / ".dockerenv").exists():
        return "docker"
    if (root / "run" / ".containerenv").exists():
        return "podman"
    try:
        cgroup = (root / "proc" / "1" / "cgroup").read_text(errors="replace")
    except OSError:
        cgroup = ""
    for marker, name in _CGROUP_MARKERS:
        if marker in cgroup:
            return name
    # Under cgroup v2 with a private cgroup namespace, /proc/1/cgroup is just "0::/"; the mount table
    # of an overlay root is then the remaining hint.
    try:
        mounts = (root / "proc" / "1" / "mountinfo").read_text(errors="replace")
    except OSError:
        return None
    for line in mounts.splitlines():
        fields = line.split(" - ", 1)
        if len(fields) == 2 and fields[0].split()[4:5] == ["/"] and fields[1].startswith("overlay "):
            return "container"
    return None


def _os_version() -> tuple[str, str]:
    """OS name and version in the words a user would use (``Ubuntu`` ``22.04``, ``macOS`` ``14.5``)."""
    system = platform.system()
    if system == "Linux":
        try:
            release = platform.freedesktop_os_release()
            return release.get("NAME", "Linux"), release.get("VERSION_ID", release.get("VERSION", ""))
        except OSError:
            return "Linux", ""
    if system == "Darwin":
        return "macOS", platform.mac_ver()[0]
    if system == "Windows":
        return "Windows", platform.version()
    return system, platform.version()


def detect_system() -> SystemInfo:
    """Describe the operating system and interpreter.

    Returns:
        The system description.
    """
    os_name, os_version = _os_version()
    return SystemInfo(
        hostname=socket.gethostname(),
        os=os_name,
        os_version=os_version,
        kernel=platform.release(),
        architecture=platform.machine(),
        python_version=platform.python_version(),
        container=detect_container(),
    )


def detect_memory() -> MemoryInfo:
    """System memory from psutil.

    Returns:
        Total, available and swap bytes.
    """
    import psutil

    vm = psutil.virtual_memory()
    try:
        swap: int | None = int(psutil.swap_memory().total)
    except (OSError, RuntimeError):
        swap = None  # psutil cannot read swap inside some sandboxes
    return MemoryInfo(total_bytes=int(vm.total), available_bytes=int(vm.available), swap_total_bytes=swap)


def detect_disk(data_dir: Path) -> DiskInfo:
    """Size and free space of the filesystem holding ``data_dir``.

    Args:
        data_dir: Agent data dir; its nearest existing parent is measured when it does not exist yet.

    Returns:
        Disk description.
    """
    path = Path(data_dir).expanduser().absolute()
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return DiskInfo(path=os.fspath(path), total_bytes=int(usage.total), free_bytes=int(usage.free))
