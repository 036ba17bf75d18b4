"""JSON session login for the web UI: ``/api/v1/auth/session/``.

``GET`` returns the current user (401 when nobody is logged in) and always sets the ``csrftoken`` cookie;
``POST {"username", "password"}`` logs in; ``DELETE`` logs out. ``POST`` and ``DELETE`` need the
``X-CSRFToken`` header matching the cookie, like every session-authenticated write.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle, ScopedRateThrottle
from rest_framework.views import APIView


class SessionLoginSerializer(serializers.Serializer):
    """Credentials of a session login."""

    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class SessionUserSerializer(serializers.Serializer):
    """The logged-in user as the UI shows it."""

    id = serializers.IntegerField()
    username = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.CharField()
    is_staff = serializers.BooleanField()


_NOT_LOGGED_IN = inline_serializer("SessionNotLoggedIn", {"detail": serializers.CharField()})


def _user_data(user: Any) -> dict[str, Any]:
    """Serialize a user for the UI."""
    return dict(SessionUserSerializer(user).data)


class SessionView(APIView):
    """Log in, inspect and log out the browser session."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [AllowAny]
    throttle_scope = "login"

    def get_throttles(self) -> list[BaseThrottle]:
        """Throttle login attempts only (the UI polls ``GET`` freely)."""
        return [ScopedRateThrottle()] if self.request.method == "POST" else []

    def _enforce_csrf(self, request: Request) -> None:
        """Refuse writes without a valid CSRF token, logged in or not (login CSRF matters too)."""
        SessionAuthentication().enforce_csrf(request)

    @extend_schema(responses={200: SessionUserSerializer, 401: _NOT_LOGGED_IN})
    def get(self, request: Request) -> Response:
        """The current user, or 401; sets the ``csrftoken`` cookie either way."""
        get_token(request._request)
        if not request.user.is_authenticated:
            return Response({"detail": "not logged in"}, status=status.HTTP_401_UNAUTHORIZED)
        return Response(_user_data(request.user))

    @extend_schema(request=SessionLoginSerializer, responses={200: SessionUserSerializer})
    def post(self, request: Request) -> Response:
        """Log in with a username and password (400 with a message when they are wrong)."""
        self._enforce_csrf(request)
        serializer = SessionLoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if user is None or not user.is_active:
            return Response(
                {"non_field_errors": ["wrong username or password"]}, status=status.HTTP_400_BAD_REQUEST
            )
        login(request._request, user)
        return Response(_user_data(user))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        """Log out (also when nobody was logged in)."""
        self._enforce_csrf(request)
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
