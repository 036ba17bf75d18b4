"""Brute-force limits on every way to log in: the token API, the session API and the admin.

Two counters per attempt, each with its own rate: by client address (``RUCKUS_LOGIN_THROTTLE``) and by the user
name tried (``RUCKUS_LOGIN_USER_THROTTLE``), so neither rotating addresses against one account nor one address
against many accounts gets far. The counters live in Django's default cache, which the settings make shared by
every process (Redis when ``REDIS_URL`` is set, else the database); a per-process cache would multiply the
limit by the number of processes. The client address comes from DRF's ``get_ident``, which trusts only as many
``X-Forwarded-For`` hops as ``NUM_PROXIES`` says (0 unless the server runs behind a proxy), so rotating that
header changes nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


def _username(request: Any) -> str:
    """The user name a login request tries, from the JSON body (API) or the form (admin); empty when absent."""
    data: Any = None
    try:
        data = getattr(request, "data", None)
    except Exception:  # an unparsable body: the view reports it; the address counter still applies
        data = None
    if data is None:
        data = getattr(request, "POST", None)
    value = data.get("username") if hasattr(data, "get") else None
    return value.strip().lower()[:150] if isinstance(value, str) else ""


class LoginAddressThrottle(SimpleRateThrottle):
    """Login attempts per client address (``RUCKUS_LOGIN_THROTTLE``, e.g. ``20/min``)."""

    scope = "login"

    def get_rate(self) -> str | None:
        """Read the rate from the settings at each use (tests and operators may change it)."""
        return settings.RUCKUS_LOGIN_THROTTLE

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        """One counter per client address."""
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUserThrottle(SimpleRateThrottle):
    """Login attempts per user name tried, whatever the address (``RUCKUS_LOGIN_USER_THROTTLE``)."""

    scope = "login-user"

    def get_rate(self) -> str | None:
        """Read the rate from the settings at each use."""
        return settings.RUCKUS_LOGIN_USER_THROTTLE

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        """One counter per user name (hashed: cache keys must be short and plain)."""
        name = _username(request)
        if not name:
            return None
        ident = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": ident}


LOGIN_THROTTLES: tuple[type[SimpleRateThrottle], ...] = (LoginAddressThrottle, LoginUserThrottle)


def login_wait(request: Any) -> float | None:
    """Count a login attempt; the seconds to wait when a limit is reached, else None.

    For views outside DRF (the admin's login form). Every counter is checked, as DRF does for its views.

    Args:
        request: The Django request of the attempt.
    """
    waits = []
    for throttle_class in LOGIN_THROTTLES:
        throttle = throttle_class()
        if not throttle.allow_request(request, None):
            waits.append(throttle.wait() or 1.0)
    return max(waits) if waits else None
