"""``manage.py ruckus_user NAME --role ROLE``: create or update a user and give it exactly one role.

Examples::

    manage.py ruckus_user alice --role operator          # asks for a password when the user is new
    manage.py ruckus_user bob --role viewer --password-env BOB_PASSWORD
    manage.py ruckus_user carol --role fleet-admin --token   # also prints a new API token: TOKEN=<token>

Fleet admins are also made staff (they use the admin); other roles are not. The role groups themselves are
kept by ``migrate`` (:func:`core.roles.sync_role_groups`); this command creates them when they are missing.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from knox.models import AuthToken

from core.roles import ROLES, assign_role


class Command(BaseCommand):
    """Create or update a user with a role (viewer, operator or fleet-admin)."""

    help = "Create or update a user and set its role (viewer, operator or fleet-admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Arguments: the user name, the role, where the password comes from, and whether to print a token."""
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES, help="The user's only role.")
        parser.add_argument("--password", help="Password (visible in the process list: prefer --password-env).")
        parser.add_argument("--password-env", help="Name of an environment variable holding the password.")
        parser.add_argument("--no-password", action="store_true",
                            help="Create the user without a usable password (API tokens only, via --token).")
        parser.add_argument("--token", action="store_true", help="Also create an API token and print TOKEN=<token>.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Create or update the user, set its role, optionally print a token."""
        username: str = options["username"].strip()
        if not username:
            raise CommandError("username must not be empty")
        User = get_user_model()
        password = self._password(options, creating=not User.objects.filter(username=username).exists())
        with transaction.atomic():
            user, created = User.objects.get_or_create(username=username)
            if password is not None:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError("password refused: " + " ".join(exc.messages)) from exc
                user.set_password(password)
            elif created:
                user.set_unusable_password()
            user.save()
            assign_role(user, options["role"])
        self.stdout.write(f"{'created' if created else 'updated'} user {username!r} with role {options['role']}")
        if options["token"]:
            _instance, token = AuthToken.objects.create(user=user)
            self.stdout.write(f"TOKEN={token}")

    def _password(self, options: dict[str, Any], *, creating: bool) -> str | None:
        """The new password, or None to keep the current one (or leave a new user without one)."""
        if options["password"] is not None:
            return str(options["password"])
        if options["password_env"]:
            value = os.environ.get(options["password_env"])
            if not value:
                raise CommandError(f"--password-env: environment variable {options['password_env']!r} is empty")
            return value
        if options["no_password"] or not creating:
            return None
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("the passwords differ")
        return first
