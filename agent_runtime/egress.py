"""What a job may make the agent reach: API-key variables, endpoints, and a transport that keeps to them.

Anyone who can create an experiment on the server decides a job's parameters, so the agent treats them as
untrusted (DESIGN section 7):

* **Key variables.** A job names the environment variable holding an endpoint's API key (``api_key_env``); only
  the names the operator allowed (``--allow-key-env``, ``RUCKUS_AGENT_ALLOWED_KEY_ENVS``) may be read, never a
  ``RUCKUS_*`` one (the agent's own settings and secrets). An unknown, unallowed or unset name gets the same
  message, so a refusal never tells which variables exist.
* **Endpoints.** A runtime's ``base_url`` or ``metrics_url`` must match the operator's list
  (``--allow-endpoint``, ``RUCKUS_AGENT_ALLOWED_ENDPOINTS``): a URL prefix (scheme, host, port and a path prefix
  ending at a segment boundary) or a network (CIDR) holding every address the host name resolves to. The
  gray-box runtimes (``vllm``, ``llamacpp_server``) may also reach loopback (a server on the agent's own host),
  and every runtime the servers the operator named (``--endpoint``). Link-local and cloud metadata addresses are
  refused whatever the list says, as are URLs with a user name or password.
* **Pinning.** :class:`PinnedTransport` checks every request it sends, then connects to the address it checked
  (the URL is rewritten to the IP; ``Host`` and the TLS server name stay the host name), so a name that resolves
  differently a moment later (DNS rebinding) cannot lead elsewhere. It also refuses any request that would carry
  one of the agent's own secrets. Clients built by :func:`pinned_client` never follow redirects.
  :class:`AsyncPinnedTransport` and :func:`async_pinned_client` do the same for the load generator's
  concurrent requests.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

import httpx

from common.netguard import (
    IPAddress,
    IPNetwork,
    always_refused,
    in_networks,
    resolve_host,
)

#: Prefix of the agent's own variables (settings, token, registration key): never readable by a job.
RESERVED_ENV_PREFIX = "RUCKUS_"
#: The one message for every way a connection can fail (refused, unreachable, reset, timed out, TLS, ...).
CONNECTION_FAILED = "no answer from the endpoint (the connection failed or timed out)"

#: Times the load generator's transport sends a request again that the server dropped without any response.
DROPPED_REQUEST_RETRIES = 3
#: ``(host, port) -> addresses``: how host names are resolved (tests substitute their own).
Resolver = Callable[[str, int], list[str]]

LOOPBACK: tuple[IPNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
#: Networks a runtime may reach without the operator's list: the gray-box runtime talks to a server on the
#: agent's own host.
RUNTIME_DEFAULT_NETWORKS: dict[str, tuple[IPNetwork, ...]] = {"vllm": LOOPBACK, "llamacpp_server": LOOPBACK}
_DEFAULT_PORTS = {"http": 80, "https": 443}


class EgressRefused(ValueError):
    """A job asked for something the agent's operator did not allow; nothing was read or sent.

    Attributes:
        field: Dotted request field at fault (``runtime.params.base_url``).
        problem: What is wrong, without the field.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class KeyEnvRefused(EgressRefused):
    """``api_key_env`` names a variable the operator did not allow (or that is not set: the same message)."""


class EndpointRefused(EgressRefused):
    """A URL is not among the endpoints the operator allowed, or is never allowed."""


class SecretRefused(EgressRefused):
    """A request would have carried one of the agent's own secrets."""


# -- key variables --------------------------------------------------------------------------------------


def is_reserved_env(name: str) -> bool:
    """True for the agent's own variables (``RUCKUS_*``, any case), which no job may read.

    Args:
        name: Variable name.
    """
    return name.upper().startswith(RESERVED_ENV_PREFIX)


@dataclass(frozen=True)
class KeyEnvPolicy:
    """The environment variables a job may name as ``api_key_env``.

    Attributes:
        allowed: Names the operator allowed (``RUCKUS_*`` removed).
        refused: ``RUCKUS_*`` names the operator listed; never allowed (reported at start-up).
    """

    allowed: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()

    @classmethod
    def from_names(cls, names: Iterable[str]) -> KeyEnvPolicy:
        """Build the policy from the operator's list.

        Args:
            names: Allowed names; ``RUCKUS_*`` ones are set aside as refused.

        Returns:
            The policy.
        """
        unique = list(dict.fromkeys(n.strip() for n in names if n.strip()))
        return cls(
            allowed=tuple(n for n in unique if not is_reserved_env(n)),
            refused=tuple(n for n in unique if is_reserved_env(n)),
        )

    def _message(self, name: str) -> str:
        """The one refusal message, whether the variable is unknown, unallowed or unset."""
        allowed = ", ".join(self.allowed) if self.allowed else "none"
        return f"api_key_env {name!r} is not an allowed key variable on this agent (the operator allows: {allowed})"

    def problem(self, name: str) -> str | None:
        """Why a job may not use ``name`` (None when it is allowed and set).

        Args:
            name: The variable a job names.
        """
        if name not in self.allowed or is_reserved_env(name) or not os.environ.get(name):
            return self._message(name)
        return None

    def read(self, name: str, *, field: str = "runtime.params.api_key_env") -> str:
        """Read an allowed variable.

        Args:
            name: The variable a job names.
            field: Dotted request field, for the refusal.

        Returns:
            Its value.

        Raises:
            KeyEnvRefused: Not allowed or not set (one message for both).
        """
        problem = self.problem(name)
        if problem is not None:
            raise KeyEnvRefused(field, problem)
        return os.environ[name]


# -- endpoints ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UrlPrefix:
    """An allowed endpoint given as a URL: its scheme, host and port, and everything under its path.

    Attributes:
        scheme: ``http`` or ``https``.
        host: Host name or address, lower case.
        port: Port (the scheme's default when the URL has none).
        path: Path prefix without a trailing slash (empty for the whole host).
    """

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, value: str) -> UrlPrefix:
        """Read an allowed-endpoint URL.

        Args:
            value: E.g. ``https://api.openai.com/v1``.

        Returns:
            The prefix.

        Raises:
            ValueError: Not an http(s) URL with a host, or with a user name, query or fragment.
        """
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"{value!r} is neither a URL nor a network (CIDR)") from exc
        if url.scheme not in _DEFAULT_PORTS or not url.host:
            raise ValueError(f"{value!r} is neither an http(s) URL with a host nor a network (CIDR)")
        if url.userinfo or url.query or url.fragment:
            raise ValueError(f"{value!r}: an allowed endpoint has no user name, password, query or fragment")
        if _has_dot_segment(url):
            raise ValueError(f"{value!r}: '.' and '..' path segments are not allowed")
        port = url.port or _DEFAULT_PORTS[url.scheme]
        return cls(url.scheme, url.host.lower(), port, url.path.rstrip("/"))

    def matches(self, scheme: str, host: str, port: int, path: str) -> bool:
        """True when a URL (already split) lies under this prefix.

        Args:
            scheme: The URL's scheme.
            host: Its host, lower case.
            port: Its port.
            path: Its path.
        """
        if (scheme, host, port) != (self.scheme, self.host, self.port):
            return False
        return not self.path or path == self.path or path.startswith(self.path + "/")

    def __str__(self) -> str:
        """The prefix as a URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == _DEFAULT_PORTS[self.scheme] else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"


def _has_dot_segment(url: httpx.URL) -> bool:
    """True when the path has a ``.`` or ``..`` segment, percent-encoded or not."""
    return any(seg in (".", "..") for seg in unquote(url.path).replace("\\", "/").split("/"))


def parse_endpoint(value: str) -> UrlPrefix | IPNetwork:
    """Read one allowed endpoint: a network (CIDR or a single address) or a URL prefix.

    Args:
        value: ``10.0.0.0/8``, ``::1``, ``https://api.openai.com/v1`` ...

    Returns:
        The network or the prefix.

    Raises:
        ValueError: Neither.
    """
    value = value.strip()
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return UrlPrefix.parse(value)


@dataclass(frozen=True)
class Target:
    """A URL that passed the policy, with the addresses it was checked at.

    Attributes:
        url: The URL.
        host: Its host name (lower case), for ``Host`` and the TLS server name.
        addresses: Every address the host resolved to, all checked; the first is the one to connect to.
    """

    url: httpx.URL
    host: str
    addresses: tuple[IPAddress, ...]

    @property
    def pinned(self) -> IPAddress:
        """The address to connect to."""
        return self.addresses[0]


@dataclass(frozen=True)
class EndpointPolicy:
    """The endpoints a job's runtime may reach.

    Attributes:
        prefixes: Allowed URL prefixes.
        networks: Allowed networks (every resolved address must lie in one).
        resolver: Resolves host names (``getaddrinfo``; tests substitute their own).
    """

    prefixes: tuple[UrlPrefix, ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=resolve_host, compare=False)

    @classmethod
    def from_values(cls, values: Iterable[str], *, resolver: Resolver = resolve_host) -> EndpointPolicy:
        """Build the policy from the operator's list.

        Args:
            values: URL prefixes and networks.
            resolver: Host name resolver.

        Returns:
            The policy.

        Raises:
            ValueError: A value is neither a URL prefix nor a network.
        """
        parsed = [parse_endpoint(v) for v in values if v.strip()]
        return cls(
            prefixes=tuple(dict.fromkeys(p for p in parsed if isinstance(p, UrlPrefix))),
            networks=tuple(dict.fromkeys(p for p in parsed if not isinstance(p, UrlPrefix))),
            resolver=resolver,
        )

    def networks_for(self, runtime: str) -> tuple[IPNetwork, ...]:
        """Networks a runtime may reach: its default ones plus the operator's.

        Args:
            runtime: Runtime name.
        """
        return (*RUNTIME_DEFAULT_NETWORKS.get(runtime, ()), *self.networks)

    def describe(self, runtime: str) -> str:
        """The allowed endpoints in words, for refusals.

        Args:
            runtime: Runtime name.
        """
        parts = [str(p) for p in self.prefixes] + [str(n) for n in self.networks]
        if runtime in RUNTIME_DEFAULT_NETWORKS:
            parts.append("loopback")
        return ", ".join(parts) if parts else "none"

    def check(self, url: str | httpx.URL, runtime: str, *, field: str) -> Target:
        """Check a URL for a runtime, resolving its host and checking every address.

        Args:
            url: The URL.
            runtime: Runtime name (``vllm`` may also reach loopback).
            field: Dotted request field, for the refusal.

        Returns:
            The target: the URL with the addresses it was checked at.

        Raises:
            EndpointRefused: With a user name or password, not http(s), or not allowed (one message whether the
                host is outside the list, resolves to a refused address or does not resolve at all).
        """
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise EndpointRefused(field, "not a valid URL") from exc
        if parsed.userinfo:
            raise EndpointRefused(field, "a URL with a user name or password is not allowed")
        if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
            raise EndpointRefused(field, "only http and https URLs with a host are allowed")
        refused = EndpointRefused(
            field,
            f"not an allowed endpoint on this agent (the operator allows: {self.describe(runtime)}; "
            "link-local and metadata addresses never are)",
        )
        if _has_dot_segment(parsed):
            raise refused
        host = parsed.host.lower()
        port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
        try:
            addresses = (ipaddress.ip_address(host),)
        except ValueError:
            try:
                addresses = tuple(ipaddress.ip_address(a) for a in self.resolver(host, port))
            except (OSError, UnicodeError, ValueError) as exc:
                raise refused from exc
        if not addresses or any(always_refused(a) for a in addresses):
            raise refused
        by_prefix = any(p.matches(parsed.scheme, host, port, parsed.path) for p in self.prefixes)
        networks = self.networks_for(runtime)
        if not by_prefix and not all(in_networks(a, networks) for a in addresses):
            raise refused
        return Target(parsed, host, addresses)


# -- the pinned transport -------------------------------------------------------------------------------


def _secret_values(secrets: Callable[[], Iterable[str]]) -> list[bytes]:
    """The secrets no request may carry, as bytes (empty: nothing to check, the body need not be read)."""
    return [s.encode() for s in secrets() if s]


def _refuse_secrets(values: list[bytes], request: httpx.Request, body: bytes) -> None:
    """Refuse a request whose URL, headers or body contain one of ``values`` (both transports' check)."""
    parts = [str(request.url).encode(), *(v for _, v in request.headers.raw), body]
    if any(v in part for v in values for part in parts):
        raise SecretRefused("request", "it would carry one of the agent's own secrets; it was not sent")


def _pinned(request: httpx.Request, target: Target) -> httpx.Request:
    """The request sent to the checked address: ``Host`` and the TLS server name stay the host name."""
    extensions = dict(request.extensions)
    if target.url.scheme == "https":
        extensions["sni_hostname"] = target.host
    return httpx.Request(
        request.method,
        request.url.copy_with(host=str(target.pinned)),
        headers=request.headers.copy(),  # Host: the name, as the client set it
        stream=request.stream,
        extensions=extensions,
    )


class PinnedTransport(httpx.BaseTransport):
    """An httpx transport that sends each request only to the address the endpoint policy checked for it.

    For every request: check the URL (resolving the host once), refuse it when it would carry one of the
    agent's own secrets, then connect to the first checked address: the URL's host becomes that IP, ``Host``
    keeps the name and, for https, the TLS server name (SNI and certificate check) is the name too.

    Args:
        policy: The endpoint policy.
        runtime: Runtime name the requests are for.
        secrets: Returns the values no request may carry (the agent's token, its server credential ...).
        inner: Transport that does the sending (default: one ``httpx.HTTPTransport`` per host name).
    """

    def __init__(
        self,
        policy: EndpointPolicy,
        runtime: str,
        *,
        secrets: Callable[[], Iterable[str]] = tuple,
        inner: httpx.BaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self.runtime = runtime
        self.secrets = secrets
        self._inner = inner
        # One connection pool per host name: connections to one address never serve another name's TLS.
        self._transports: dict[tuple[str, str, int], httpx.BaseTransport] = {}

    def _transport(self, target: Target) -> httpx.BaseTransport:
        """The transport for a target's host name."""
        if self._inner is not None:
            return self._inner
        key = (target.url.scheme, target.host, target.url.port or _DEFAULT_PORTS[target.url.scheme])
        if key not in self._transports:
            self._transports[key] = httpx.HTTPTransport()
        return self._transports[key]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Check, pin and send one request.

        Args:
            request: The request as the client built it.

        Returns:
            The response.

        Raises:
            EndpointRefused: The URL is not allowed (now: the name may resolve differently than at admission).
            SecretRefused: The request would carry one of the agent's secrets.
        """
        target = self.policy.check(request.url, self.runtime, field="request URL")
        if values := _secret_values(self.secrets):
            _refuse_secrets(values, request, request.read())
        return self._transport(target).handle_request(_pinned(request, target))

    def close(self) -> None:
        """Close the underlying transports."""
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
        if self._inner is not None:
            self._inner.close()


class AsyncPinnedTransport(httpx.AsyncBaseTransport):
    """The asynchronous twin of :class:`PinnedTransport`, for the load generator's concurrent requests.

    Every request is checked against the policy, refused when it would carry one of the agent's secrets, and
    sent to the first address the check resolved (``Host`` and the TLS server name stay the host name), exactly
    as :class:`PinnedTransport` does. A request the server dropped without any response (a kept-alive connection
    it had closed) is sent again, at most :data:`DROPPED_REQUEST_RETRIES` times.

    Args:
        policy: The endpoint policy.
        runtime: Runtime name the requests are for.
        secrets: Returns the values no request may carry.
        inner: Transport that does the sending (default: one ``httpx.AsyncHTTPTransport`` per host name).
        limits: Connection limits of the default transports (a load point keeps many requests in flight).
    """

    def __init__(
        self,
        policy: EndpointPolicy,
        runtime: str,
        *,
        secrets: Callable[[], Iterable[str]] = tuple,
        inner: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        self.policy = policy
        self.runtime = runtime
        self.secrets = secrets
        self._inner = inner
        self._limits = limits or httpx.Limits(max_connections=None, max_keepalive_connections=None)
        self._transports: dict[tuple[str, str, int], httpx.AsyncBaseTransport] = {}

    def _transport(self, target: Target) -> httpx.AsyncBaseTransport:
        """The transport for a target's host name."""
        if self._inner is not None:
            return self._inner
        key = (target.url.scheme, target.host, target.url.port or _DEFAULT_PORTS[target.url.scheme])
        if key not in self._transports:
            self._transports[key] = httpx.AsyncHTTPTransport(limits=self._limits)
        return self._transports[key]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Check, pin and send one request.

        Args:
            request: The request as the client built it.

        Returns:
            The response.

        Raises:
            EndpointRefused: The URL is not allowed (now: the name may resolve differently than at admission).
            SecretRefused: The request would carry one of the agent's secrets.
        """
        target = self.policy.check(request.url, self.runtime, field="request URL")
        if values := _secret_values(self.secrets):
            _refuse_secrets(values, request, await request.aread())
        pinned = _pinned(request, target)
        transport = self._transport(target)
        for _ in range(DROPPED_REQUEST_RETRIES):
            try:
                return await transport.handle_async_request(pinned)
            except httpx.RemoteProtocolError:
                # No response at all: the server had closed the kept-alive connection the request went out on (a
                # race every client of a server that closes connections meets: llama-server does, under load). It
                # never read the request, which goes out again on another connection when its body can be resent.
                if not isinstance(request.stream, httpx.ByteStream):
                    raise
        return await transport.handle_async_request(pinned)

    async def aclose(self) -> None:
        """Close the underlying transports."""
        for transport in self._transports.values():
            await transport.aclose()
        self._transports.clear()
        if self._inner is not None:
            await self._inner.aclose()


def async_pinned_client(
    policy: EndpointPolicy,
    runtime: str,
    *,
    timeout: httpx.Timeout | float,
    secrets: Callable[[], Iterable[str]] = tuple,
    inner: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An asynchronous client for a runtime's endpoint, with the guarantees of :func:`pinned_client`.

    Pinned to checked addresses, no redirects, no environment proxies, no connection limit (the load point's
    concurrency is the limit).

    Args:
        policy: The endpoint policy.
        runtime: Runtime name.
        timeout: Request timeout.
        secrets: Values no request may carry.
        inner: Transport that does the sending (tests).

    Returns:
        The client.
    """
    transport = AsyncPinnedTransport(policy, runtime, secrets=secrets, inner=inner)
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)


def pinned_client(
    policy: EndpointPolicy,
    runtime: str,
    *,
    timeout: httpx.Timeout | float,
    secrets: Callable[[], Iterable[str]] = tuple,
    inner: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An HTTP client for a runtime's endpoint: pinned to checked addresses, no redirects, no environment proxies.

    Args:
        policy: The endpoint policy.
        runtime: Runtime name.
        timeout: Request timeout.
        secrets: Values no request may carry.
        inner: Transport that does the sending (tests).

    Returns:
        The client.
    """
    transport = PinnedTransport(policy, runtime, secrets=secrets, inner=inner)
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)
