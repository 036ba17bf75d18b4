"""The three roles of a shared RUCKUS server, as Django groups holding Django model permissions.

* **viewer**: reads every experiment, job, result and agent (sharing results is the point of the tool);
* **operator**: also creates experiments, and edits, cancels, retries or deletes *its own*;
* **fleet-admin**: also registers, edits, refreshes, (de)activates and removes agents, and acts on anyone's
  experiments (members are staff, so they also use the admin).

A user belongs to one of them (``manage.py ruckus_user NAME --role ROLE``); superusers hold every permission.
Which permission each endpoint needs is declared next to the view (:mod:`core.permissions`); this module only
says which permissions each role's group holds, and keeps the groups in step at every ``migrate``.
"""

from __future__ import annotations

from typing import Any

VIEWER = "viewer"
OPERATOR = "operator"
FLEET_ADMIN = "fleet-admin"

#: Roles from the least to the most powerful (a user in several groups has the strongest).
ROLES: tuple[str, ...] = (VIEWER, OPERATOR, FLEET_ADMIN)

# Permission names ("app_label.codename"). Strings, not imports: core sits below the apps that define them.
VIEW_EXPERIMENTS = "experiments.view_experiment"
VIEW_JOBS = "experiments.view_job"
VIEW_AGENTS = "agents.view_agent"
ADD_EXPERIMENT = "experiments.add_experiment"
CHANGE_EXPERIMENT = "experiments.change_experiment"
DELETE_EXPERIMENT = "experiments.delete_experiment"
CHANGE_JOB = "experiments.change_job"
#: Act on experiments (and their jobs) owned by someone else: the fleet admins' override of ownership.
MANAGE_ANY_EXPERIMENT = "experiments.manage_any_experiment"
ADD_AGENT = "agents.add_agent"
CHANGE_AGENT = "agents.change_agent"
DELETE_AGENT = "agents.delete_agent"

_VIEWER_PERMS = [VIEW_EXPERIMENTS, VIEW_JOBS, VIEW_AGENTS, "experiments.view_jobattempt"]
_OPERATOR_PERMS = [*_VIEWER_PERMS, ADD_EXPERIMENT, CHANGE_EXPERIMENT, DELETE_EXPERIMENT, CHANGE_JOB]
_FLEET_ADMIN_PERMS = [*_OPERATOR_PERMS, MANAGE_ANY_EXPERIMENT, ADD_AGENT, CHANGE_AGENT, DELETE_AGENT]

#: The permissions each role's group holds.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    VIEWER: _VIEWER_PERMS,
    OPERATOR: _OPERATOR_PERMS,
    FLEET_ADMIN: _FLEET_ADMIN_PERMS,
}


def role_of(user: Any) -> str | None:
    """The strongest role of a user (superusers count as fleet admins), or None without one.

    Args:
        user: A Django user (anonymous users have no role).
    """
    if not getattr(user, "is_authenticated", False):
        return None
    if getattr(user, "is_superuser", False):
        return FLEET_ADMIN
    names = set(user.groups.values_list("name", flat=True))
    for role in reversed(ROLES):
        if role in names:
            return role
    return None


def capabilities_of(user: Any) -> dict[str, bool]:
    """What a user may do, in the terms the UI and the CLI offer actions by.

    Args:
        user: A Django user.

    Returns:
        ``view``, ``create_experiments``, ``manage_all_experiments`` and ``manage_agents`` flags.
    """
    if not getattr(user, "is_authenticated", False):
        return {"view": False, "create_experiments": False, "manage_all_experiments": False, "manage_agents": False}
    return {
        "view": user.has_perm(VIEW_EXPERIMENTS),
        "create_experiments": user.has_perm(ADD_EXPERIMENT),
        "manage_all_experiments": user.has_perm(MANAGE_ANY_EXPERIMENT),
        "manage_agents": user.has_perms([ADD_AGENT, CHANGE_AGENT, DELETE_AGENT]),
    }


def may_manage(user: Any, owner_id: int | None) -> bool:
    """Whether a user may change an experiment (or its jobs) owned by ``owner_id``.

    Owners need the change permission (operators have it); others need :data:`MANAGE_ANY_EXPERIMENT`.

    Args:
        user: A Django user.
        owner_id: The experiment's owner's id (None: nobody owns it, only fleet admins may act on it).
    """
    if not getattr(user, "is_authenticated", False):
        return False
    if user.has_perm(MANAGE_ANY_EXPERIMENT):
        return True
    return owner_id is not None and owner_id == user.pk and user.has_perm(CHANGE_EXPERIMENT)


def sync_role_groups(sender: Any = None, **_kwargs: Any) -> None:
    """Create the role groups and give each exactly its permissions (idempotent).

    Connected to ``post_migrate``, which is sent once per app after ``migrate`` and ``flush``: the work is done at
    the last app's signal, when every app's permissions exist.

    Args:
        sender: The app config the signal is sent for (None: do it now).
    """
    # lazy: the auth models exist only once the app registry is ready
    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    if sender is not None and sender != [c for c in apps.get_app_configs() if c.models_module][-1]:
        return

    for role, names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for name in names:
            app_label, codename = name.split(".", 1)
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:  # an app not migrated yet (partial migrate); the next migrate adds it
                wanted.append(permission)
        group.permissions.set(wanted)


def assign_role(user: Any, role: str) -> None:
    """Give a user exactly one role: its group, and staff status for fleet admins only (superusers stay staff).

    Args:
        user: A saved Django user.
        role: One of :data:`ROLES`.

    Raises:
        ValueError: ``role`` is not a role.
    """
    # lazy: the auth models exist only once the app registry is ready
    from django.contrib.auth.models import Group

    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if not Group.objects.filter(name=role).exists():
        sync_role_groups()
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    user.groups.add(Group.objects.get(name=role))
    staff = role == FLEET_ADMIN or user.is_superuser
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])
    # Django caches a user's permissions on the object: the new group must count at once.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)
