"""Which network addresses a RUCKUS process may connect to for someone else: shared by the server and the agent.

The server calls agents at URLs that users register; an agent calls endpoints that experiments name. Both check
every address a host name resolves to against their own list of allowed networks, and both refuse, whatever
that list says, the addresses that lead to the host's secrets or nowhere sensible (:data:`ALWAYS_REFUSED`),
also when an IPv6 address carries one of them inside it (IPv4-mapped, NAT64, 6to4, Teredo, IPv4-compatible).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Never reachable, whatever the operator allows: link-local (cloud metadata at 169.254.169.254), the other
#: metadata services' addresses, unspecified, multicast and broadcast addresses.
ALWAYS_REFUSED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",
        "fe80::/10",
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "0.0.0.0/8",
        "::/128",
        "224.0.0.0/4",
        "255.255.255.255/32",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

def embedded_ipv4(addr: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, NAT64, 6to4, Teredo, IPv4-compatible).

    Args:
        addr: The address.
    """
    if isinstance(addr, ipaddress.IPv4Address):
        return []
    found = [a for a in (addr.ipv4_mapped, addr.sixtofour) if a is not None]
    if addr.teredo is not None:
        found.extend(addr.teredo)
    if addr in _NAT64 or (addr in _IPV4_COMPATIBLE and int(addr) > 1):
        found.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return found


def plain_address(addr: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it is; anything else unchanged.

    Args:
        addr: The address.
    """
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def always_refused(addr: IPAddress) -> bool:
    """True for link-local, metadata and other never-reachable addresses, in any IPv6 wrapping.

    Args:
        addr: The address.
    """
    forms = (plain_address(addr), *embedded_ipv4(addr))
    return any(a.version == net.version and a in net for a in forms for net in ALWAYS_REFUSED)


def in_networks(addr: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    """True when ``addr`` (an IPv4-mapped address as its IPv4 form) lies in one of ``networks``.

    Args:
        addr: The address.
        networks: The networks.
    """
    plain = plain_address(addr)
    return any(plain.version == net.version and plain in net for net in networks)


def resolve_host(host: str, port: int) -> list[str]:
    """Every address a host name resolves to, in the resolver's order.

    Args:
        host: Host name.
        port: Port (for ``getaddrinfo``).

    Returns:
        The addresses.

    Raises:
        OSError: The name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))
