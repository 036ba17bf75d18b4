"""Logging in: API tokens for scripts and the CLI, the browser session for the web UI, and who am I.

* ``POST /api/v1/auth/token/`` ``{"username", "password"}`` → ``{"token", "expiry", "user"}``: a new API token
  (django-rest-knox: only its hash is stored, it expires after ``RUCKUS_TOKEN_TTL_HOURS`` and can be revoked);
  ``POST /api/v1/auth/token/logout/`` revokes the token that authenticates the call,
  ``POST /api/v1/auth/token/logoutall/`` every token of the user.
* ``/api/v1/auth/session/``: ``GET`` returns the current user (401 when nobody is logged in) and always sets the
  ``csrftoken`` cookie; ``POST {"username", "password"}`` logs in; ``DELETE`` logs out. ``POST`` and ``DELETE``
  need the ``X-CSRFToken`` header matching the cookie, like every session-authenticated write.
* ``GET /api/v1/auth/me/``: the user of a token or a session, with its role and what it may do.

Every login is throttled by client address and by user name (:mod:`core.throttling`); a throttled attempt is
answered 429 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema, inline_serializer
from knox.views import LoginView as KnoxLoginView
from knox.views import LogoutAllView as KnoxLogoutAllView
from knox.views import LogoutView as KnoxLogoutView
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from core.auth import KnoxTokenAuthentication
from core.roles import ROLES, capabilities_of, role_of
from core.throttling import LOGIN_THROTTLES

WRONG_CREDENTIALS = "wrong username or password"


class LoginSerializer(serializers.Serializer):
    """Credentials of a login (token or session)."""

    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class PermissionsSerializer(serializers.Serializer):
    """What the user may do (the UI and the CLI offer only these actions)."""

    view = serializers.BooleanField(help_text="Read experiments, jobs, results and agents.")
    create_experiments = serializers.BooleanField(help_text="Create experiments (and act on one's own).")
    manage_all_experiments = serializers.BooleanField(help_text="Act on anyone's experiments.")
    manage_agents = serializers.BooleanField(help_text="Register, edit, refresh, (de)activate and remove agents.")


class UserSerializer(serializers.Serializer):
    """The user with its role, as the UI and the CLI show it."""

    id = serializers.IntegerField()
    username = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.CharField()
    is_staff = serializers.BooleanField()
    role = serializers.ChoiceField(choices=list(ROLES), allow_null=True,
                                   help_text="Strongest role of the user; null without one (every call is then 403).")
    permissions = PermissionsSerializer()


class TokenAnswerSerializer(serializers.Serializer):
    """A new API token: shown once, stored only as a hash on the server."""

    token = serializers.CharField(help_text="Send as 'Authorization: Token <token>'.")
    expiry = serializers.DateTimeField(allow_null=True, help_text="When the token stops working.")
    user = UserSerializer()


_NOT_LOGGED_IN = inline_serializer("SessionNotLoggedIn", {"detail": serializers.CharField()})
_THROTTLED = inline_serializer("LoginThrottled", {"detail": serializers.CharField()})
# A missing user name or password is named like any other field, so non_field_errors is not always there.
_LOGIN_REFUSED = inline_serializer("LoginRefused", {"non_field_errors": serializers.ListField(
    child=serializers.CharField(), required=False)})


def user_data(user: Any) -> dict[str, Any]:
    """Serialize a user with its role and capabilities.

    Args:
        user: An authenticated Django user.
    """
    return dict(UserSerializer({
        "id": user.pk, "username": user.get_username(), "first_name": user.first_name,
        "last_name": user.last_name, "email": user.email, "is_staff": user.is_staff,
        "role": role_of(user), "permissions": capabilities_of(user),
    }).data)


def _check_credentials(request: Request) -> Any:
    """The active user the request's credentials name; a 400 naming no detail when they are wrong."""
    serializer = LoginSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    user = authenticate(request._request, username=serializer.validated_data["username"],
                        password=serializer.validated_data["password"])
    if user is None or not user.is_active:
        raise ValidationError({"non_field_errors": [WRONG_CREDENTIALS]})
    return user


class TokenLoginView(KnoxLoginView):
    """Exchange a user name and password for a new API token."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = list(LOGIN_THROTTLES)

    def get_post_response_data(self, request: Request, token: str, instance: Any) -> dict[str, Any]:
        """The token, its expiry and the user (with role)."""
        return {"token": token, "expiry": self.format_expiry_datetime(instance.expiry), "user": user_data(request.user)}

    @extend_schema(request=LoginSerializer,
                   responses={200: TokenAnswerSerializer, 400: _LOGIN_REFUSED, 429: _THROTTLED}, auth=[{}])
    def post(self, request: Request, format: str | None = None) -> Response:
        """Log in with a user name and password (anonymous); 400 when they are wrong, 429 when throttled."""
        request.user = _check_credentials(request)
        return super().post(request, format=format)


class TokenLogoutView(KnoxLogoutView):
    """Revoke the token that authenticates this call."""

    authentication_classes = [KnoxTokenAuthentication]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, format: str | None = None) -> Response:
        """Revoke this token."""
        return super().post(request, format=format)


class TokenLogoutAllView(KnoxLogoutAllView):
    """Revoke every token of the user."""

    authentication_classes = [KnoxTokenAuthentication]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, format: str | None = None) -> Response:
        """Revoke all of this user's tokens."""
        return super().post(request, format=format)


class MeView(APIView):
    """The authenticated user (token or session), with role and capabilities; also for users without a role."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=UserSerializer)
    def get(self, request: Request) -> Response:
        """Who am I, and what may I do."""
        return Response(user_data(request.user))


class SessionView(APIView):
    """Log in, inspect and log out the browser session."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [AllowAny]

    def get_throttles(self) -> list[BaseThrottle]:
        """Throttle login attempts only (the UI polls ``GET`` freely)."""
        return [throttle() for throttle in LOGIN_THROTTLES] if self.request.method == "POST" else []

    def _enforce_csrf(self, request: Request) -> None:
        """Refuse writes without a valid CSRF token, logged in or not (login CSRF matters too)."""
        SessionAuthentication().enforce_csrf(request)

    @extend_schema(responses={200: UserSerializer, 401: _NOT_LOGGED_IN}, auth=[{"cookieAuth": []}, {}])
    def get(self, request: Request) -> Response:
        """The current user, or 401; sets the ``csrftoken`` cookie either way."""
        get_token(request._request)
        if not request.user.is_authenticated:
            return Response({"detail": "not logged in"}, status=status.HTTP_401_UNAUTHORIZED)
        return Response(user_data(request.user))

    @extend_schema(request=LoginSerializer, responses={200: UserSerializer, 400: _LOGIN_REFUSED, 429: _THROTTLED},
                   auth=[{}])
    def post(self, request: Request) -> Response:
        """Log in with a username and password (400 with a message when they are wrong, 429 when throttled)."""
        self._enforce_csrf(request)
        user = _check_credentials(request)
        login(request._request, user)
        return Response(user_data(user))

    @extend_schema(request=None, responses={204: None}, auth=[{"cookieAuth": []}, {}])
    def delete(self, request: Request) -> Response:
        """Log out (also when nobody was logged in)."""
        self._enforce_csrf(request)
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
