"""Guard for URLs that users supply and the server then calls (DESIGN section 7).

Link-local and cloud-metadata addresses (169.254.0.0/16, fe80::/10 and others, in any IPv6 wrapping:
:func:`common.netguard.always_refused`) are refused always; otherwise every address the host name resolves to must
lie in ``RUCKUS_AGENT_ALLOWED_NETWORKS`` (default: private ranges, plus loopback with ``DEBUG``). The check yields
the address to connect to (:class:`CheckedURL`), and :class:`agents.client.AgentClient` connects there and nowhere
else. URLs are ``scheme://host[:port][/prefix]``: no user name, query or fragment.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

from common.netguard import always_refused, in_networks, plain_address

_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)*")


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


@dataclass(frozen=True)
class CheckedURL:
    """An agent URL that passed the guard, with the address it was checked at.

    The server connects to :attr:`address`, never to the name again: a name resolved once for the check and
    again by the HTTP client could point somewhere else the second time (DNS rebinding).

    Attributes:
        url: The normalized URL (no trailing slash), as stored and shown.
        scheme: ``http`` or ``https``.
        host: The host name as given (for the ``Host`` header and TLS).
        port: The port.
        prefix: The path prefix given at registration ("" when none).
        address: The checked IP address to connect to.
    """

    url: str
    scheme: str
    host: str
    port: int
    prefix: str
    address: str

    def pinned(self, path: str) -> str:
        """The URL of ``path`` (below the prefix) at the checked address."""
        literal = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{literal}:{self.port}{self.prefix}{path}"

    @property
    def host_header(self) -> str:
        """The ``Host`` header the agent expects: the name (and port) it was registered with."""
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


def check_agent_url(url: str) -> str:
    """Validate an agent URL and return it normalized (no trailing slash).

    Args:
        url: ``http(s)://host[:port][/prefix]``.

    Returns:
        The normalized URL.

    Raises:
        UnsafeURL: With the reason, when the URL is malformed or points somewhere the server must not call.
    """
    return resolve_agent_url(url).url


def resolve_agent_url(url: str) -> CheckedURL:
    """Validate an agent URL, resolve its host once and check every address it resolves to.

    Args:
        url: ``http(s)://host[:port][/prefix]``: no user name or password, query or fragment (they would let a
            caller choose what the server asks for on another service).

    Returns:
        The URL with the checked address to connect to.

    Raises:
        UnsafeURL: With the reason, when the URL is malformed or points somewhere the server must not call.
    """
    parts = _split(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("URL must start with http:// or https://")
    if not parts.hostname:
        raise UnsafeURL("URL has no host")
    if "@" in parts.netloc:
        raise UnsafeURL("URL must not carry credentials; pass the agent token separately")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise UnsafeURL("URL must not carry a query (?) or fragment (#): give http(s)://host[:port][/prefix]")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL(f"URL has an invalid port: {exc}") from exc
    prefix = parts.path.rstrip("/")
    if not _PREFIX.fullmatch(prefix) or any(seg in (".", "..") for seg in prefix.split("/")):
        raise UnsafeURL("URL path prefix may hold only letters, digits and - . _ ~ / (no '.' or '..' segments, "
                        "no escapes)")
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"host {parts.hostname!r} does not resolve") from exc
    allowed = _networks()
    addresses = []
    for info in infos:
        address = plain_address(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
        if always_refused(address):
            raise UnsafeURL(f"{address} is a link-local, metadata or unspecified address; the server never calls those")
        if not in_networks(address, allowed):
            raise UnsafeURL(
                f"{address} is outside the allowed agent networks ({', '.join(str(n) for n in allowed)}); "
                "set RUCKUS_AGENT_ALLOWED_NETWORKS to allow it"
            )
        addresses.append(str(address))
    if not addresses:
        raise UnsafeURL(f"host {parts.hostname!r} does not resolve")
    normalized = f"{parts.scheme}://{parts.netloc}{prefix}"
    return CheckedURL(url=normalized, scheme=parts.scheme, host=parts.hostname, port=port, prefix=prefix,
                      address=addresses[0])
