"""Guard for URLs that users supply and the server then calls (DESIGN section 7).

Link-local and cloud-metadata addresses (169.254.0.0/16, fe80::/10) are refused always; otherwise every address
the host name resolves to must lie in ``RUCKUS_AGENT_ALLOWED_NETWORKS`` (default: loopback and private ranges).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

ALWAYS_REFUSED = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


class UnsafeURL(ValueError):
    """The URL may not be called by the server; the message says why."""


def _networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The configured allowed networks."""
    return [ipaddress.ip_network(n.strip(), strict=False) for n in settings.RUCKUS_AGENT_ALLOWED_NETWORKS if n.strip()]


def _split(url: str) -> SplitResult:
    """Split a URL whose host name the resolver and the HTTP client will both take, or say why not.

    Non-ASCII hosts are refused (``①②⑦.0.0.1`` resolves as ``127.0.0.1`` but no HTTP client calls it; a name
    with non-ASCII letters is written in its ``xn--`` form), and so are empty or over-long labels.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError as exc:
        raise UnsafeURL(f"URL is malformed: {exc}") from exc
    if not host.isascii():
        raise UnsafeURL("URL host must be ASCII: write an internationalised name in its xn-- form")
    if host and ":" not in host:
        try:
            host.encode("idna")
        except UnicodeError as exc:
            raise UnsafeURL(f"URL host {host[:80]!r} is not a valid host name ({exc.__cause__ or exc})") from exc
    return parts


def check_agent_url(url: str) -> str:
    """Validate an agent URL and return it normalized (no trailing slash).

    Args:
        url: ``http(s)://host[:port][/prefix]``.

    Returns:
        The normalized URL.

    Raises:
        UnsafeURL: With the reason, when the URL is malformed or points somewhere the server must not call.
    """
    parts = _split(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("URL must start with http:// or https://")
    if not parts.hostname:
        raise UnsafeURL("URL has no host")
    if parts.username or parts.password:
        raise UnsafeURL("URL must not carry credentials; pass the agent token separately")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL(f"URL has an invalid port: {exc}") from exc
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UnsafeURL(f"host {parts.hostname!r} does not resolve: {exc.strerror}") from exc
    allowed = _networks()
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if any(address in net for net in ALWAYS_REFUSED):
            raise UnsafeURL(f"{address} is a link-local/metadata address; the server never calls those")
        if not any(address in net for net in allowed):
            raise UnsafeURL(
                f"{address} is outside the allowed agent networks ({', '.join(str(n) for n in allowed)}); "
                "set RUCKUS_AGENT_ALLOWED_NETWORKS to allow it"
            )
    return url.strip().rstrip("/")
