"""Who may call which endpoint: one rule per view action, declared next to the view, refused when missing.

Every user-facing view lists its rules in ``access_rules``, keyed by the viewset action (``list``, ``create``,
``cancel``...) or, for plain API views, the HTTP method. :class:`RolePermission` (the project's default
permission class) applies them: a request needs the rule's Django permission, and for a rule with ``own``, the
object must be the user's own (or the user holds :data:`core.roles.MANAGE_ANY_EXPERIMENT`). A view or action
without a rule is refused for everybody, so a new endpoint is closed until someone decides who may use it;
the authorization table test lists every route and fails on one it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from core.roles import may_manage

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Rule:
    """What an endpoint needs.

    Attributes:
        perm: The Django permission (``app_label.codename``) the user must hold.
        own: The object must belong to the user (owner of the experiment, or of the job's experiment), unless
            the user may act on anyone's experiments.
    """

    perm: str
    own: bool = False


def _rule(request: Request, view: Any) -> Rule | None:
    """The rule of this request's action (viewsets) or method (plain views)."""
    rules: dict[str, Rule] = getattr(view, "access_rules", {}) or {}
    action = getattr(view, "action", None)
    if action is not None:
        return rules.get(action)
    method = request.method or ""
    # HEAD and OPTIONS are the reads of GET.
    return rules.get("GET" if method in ("HEAD", "OPTIONS") else method, rules.get(method))


class RolePermission(BasePermission):
    """Apply the view's :class:`Rule` for the request's action; no rule, no access."""

    message = "your role does not allow this"

    def has_permission(self, request: Request, view: Any) -> bool:
        """Allow when the user holds the rule's permission (the object check comes later for ``own`` rules)."""
        user = request.user
        if not (user and user.is_authenticated):
            return False
        rule = _rule(request, view)
        if rule is None:
            log.error("access_rule_missing", view=type(view).__name__, action=getattr(view, "action", None),
                      method=request.method)
            self.message = "this endpoint has no access rule; it is closed"
            return False
        if not user.has_perm(rule.perm):
            self.message = _refusal(rule.perm)
            return False
        return True

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        """For ``own`` rules: the object's experiment must be the user's, or the user may act on anyone's."""
        rule = _rule(request, view)
        if rule is None or not rule.own:
            return rule is not None
        if may_manage(request.user, owner_id_of(obj)):
            return True
        self.message = "you may only change your own experiments and their jobs"
        return False


def owner_id_of(obj: Any) -> int | None:
    """The owner's id of an experiment, or of a job's experiment.

    Args:
        obj: An experiment (``owner_id``) or a job (``experiment.owner_id``).
    """
    if hasattr(obj, "owner_id"):
        return obj.owner_id
    experiment = getattr(obj, "experiment", None)
    return getattr(experiment, "owner_id", None)


_ROLE_FOR = {
    "view": "any role (viewer, operator or fleet-admin)",
    "add_experiment": "the operator or fleet-admin role",
    "change_experiment": "the operator or fleet-admin role",
    "delete_experiment": "the operator or fleet-admin role",
    "change_job": "the operator or fleet-admin role",
    "manage_any_experiment": "the fleet-admin role",
    "add_agent": "the fleet-admin role",
    "change_agent": "the fleet-admin role",
    "delete_agent": "the fleet-admin role",
}


def _refusal(perm: str) -> str:
    """The 403 text for a missing permission: which role would allow it."""
    codename = perm.split(".", 1)[-1]
    needed = _ROLE_FOR.get("view" if codename.startswith("view_") else codename, "another role")
    return f"your role does not allow this: it needs {needed} (ask a fleet admin to add you to one)"
