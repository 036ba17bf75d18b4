"""Anonymous health endpoints: ``/healthz`` (the process answers) and ``/readyz`` (the database answers)."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process serves requests."""
    return JsonResponse({"status": "ok"})


def _channel_layer_state() -> str:
    """Round-trip one message through the channel layer (Redis when configured)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return "not configured"

    async def roundtrip() -> None:
        channel = await layer.new_channel("readyz.")
        await layer.send(channel, {"type": "readyz.ping"})
        await layer.receive(channel)

    async_to_sync(roundtrip)()
    return f"ok ({type(layer).__name__})"


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers a query and the channel layer carries a message; 503 otherwise."""
    report: dict[str, str] = {}
    ok = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        report["database"] = connection.vendor
    except Exception as exc:  # any database failure means "not ready"
        ok = False
        report["database"] = f"unavailable: {exc}"
    try:
        report["channel_layer"] = _channel_layer_state()
    except Exception as exc:  # Redis down: websockets cannot fan out
        ok = False
        report["channel_layer"] = f"unavailable: {exc}"
    return JsonResponse({"status": "ok" if ok else "unavailable", **report}, status=200 if ok else 503)
