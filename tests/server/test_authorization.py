"""Who may do what: every endpoint of the API schema, called by every role, against the table below.

The table names, for each operation of the OpenAPI schema, the rule it follows; the test calls each operation
as each kind of caller (anonymous, a user without a role, a viewer, operator A who owns the objects, operator B
who does not, a fleet admin) on fresh objects and checks that exactly the expected callers get past
authorization. An operation added to the API without a row here fails :func:`test_every_operation_has_a_rule`.

"Got past authorization" means any answer other than a refusal by authentication or permissions (401, or 403
with one of the permission messages): a 400 for a deliberately incomplete body or a 409 from the state
machine still shows that the caller was let in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from common.statuses import JobStatus
from experiments.models import Experiment
from ruckus_server.asgi import application
from tests.factories import AgentFactory, ExperimentFactory, JobFactory, UserFactory, api_token

pytestmark = pytest.mark.django_db

CALLERS = ("anonymous", "no-role", "viewer", "operator-a", "operator-b", "fleet-admin")

# Rules: which callers get past authorization.
READ = {"viewer", "operator-a", "operator-b", "fleet-admin"}
CREATE = {"operator-a", "operator-b", "fleet-admin"}
OWN = {"operator-a", "fleet-admin"}  # operator A owns the experiment (and its job) used by the call
FLEET = {"fleet-admin"}
SELF = {"no-role", "viewer", "operator-a", "operator-b", "fleet-admin"}  # any logged-in user, even without a role
PUBLIC = set(CALLERS)  # anonymous by design (logging in, agents joining)
AGENT = set()  # agents' own calls: no user credential opens them

RULES: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/agents/"): READ,
    ("POST", "/api/v1/agents/"): FLEET,
    ("GET", "/api/v1/agents/{id}/"): READ,
    ("PUT", "/api/v1/agents/{id}/"): FLEET,
    ("PATCH", "/api/v1/agents/{id}/"): FLEET,
    ("DELETE", "/api/v1/agents/{id}/"): FLEET,
    ("POST", "/api/v1/agents/{id}/activate/"): FLEET,
    ("POST", "/api/v1/agents/{id}/deactivate/"): FLEET,
    ("POST", "/api/v1/agents/{id}/refresh/"): FLEET,
    ("POST", "/api/v1/agents/{id}/capabilities/"): AGENT,
    ("POST", "/api/v1/agents/{id}/heartbeat/"): AGENT,
    ("POST", "/api/v1/agents/{id}/work/"): AGENT,
    ("POST", "/api/v1/agents/{id}/reach/"): PUBLIC,
    ("POST", "/api/v1/agents/announce/"): PUBLIC,
    ("GET", "/api/v1/auth/me/"): SELF,
    ("GET", "/api/v1/auth/session/"): PUBLIC,
    ("POST", "/api/v1/auth/session/"): PUBLIC,
    ("DELETE", "/api/v1/auth/session/"): PUBLIC,
    ("POST", "/api/v1/auth/token/"): PUBLIC,
    ("POST", "/api/v1/auth/token/logout/"): SELF,
    ("POST", "/api/v1/auth/token/logoutall/"): SELF,
    ("GET", "/api/v1/catalog/"): READ,
    ("GET", "/api/v1/experiments/"): READ,
    ("POST", "/api/v1/experiments/"): CREATE,
    ("POST", "/api/v1/experiments/plan/"): CREATE,
    ("GET", "/api/v1/experiments/{id}/"): READ,
    ("PUT", "/api/v1/experiments/{id}/"): OWN,
    ("PATCH", "/api/v1/experiments/{id}/"): OWN,
    ("DELETE", "/api/v1/experiments/{id}/"): OWN,
    ("POST", "/api/v1/experiments/{id}/cancel/"): OWN,
    ("GET", "/api/v1/experiments/{id}/comparison/"): READ,
    ("GET", "/api/v1/experiments/{id}/export/"): READ,
    ("GET", "/api/v1/experiments/{id}/load/"): READ,
    ("GET", "/api/v1/experiments/{id}/plan/"): READ,
    ("GET", "/api/v1/experiments/{id}/results/"): READ,
    ("GET", "/api/v1/jobs/"): READ,
    ("GET", "/api/v1/jobs/{id}/"): READ,
    ("POST", "/api/v1/jobs/{id}/cancel/"): OWN,
    ("POST", "/api/v1/jobs/{id}/retry/"): OWN,
    ("GET", "/api/v1/jobs/{id}/results/"): READ,
    ("GET", "/api/v1/jobs/{id}/load/"): READ,
    ("POST", "/api/v1/jobs/{id}/progress/"): AGENT,
    ("POST", "/api/v1/jobs/{id}/result/"): AGENT,
}

#: Refusals by authentication or permissions (other 403s, e.g. a wrong registration key, are the view's answer).
REFUSAL_MESSAGES = (
    "Authentication credentials were not provided",
    "Invalid token",
    "your role does not allow",
    "you may only change your own",
    "this endpoint is for agents",
    "CSRF Failed",
)


def schema_operations() -> set[tuple[str, str]]:
    """Every (method, path) of the OpenAPI schema."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_every_operation_has_a_rule():
    operations = schema_operations()
    assert operations - set(RULES) == set(), "new endpoints need a row in RULES (and an access rule on the view)"
    assert set(RULES) - operations == set(), "RULES names endpoints that no longer exist"


def make_callers() -> dict[str, Callable[[], APIClient]]:
    """Per caller, a maker of API clients, each with a new real API token (anonymous: none).

    A new token per call: the logout operations revoke the caller's tokens.
    """
    def maker(user: Any) -> Callable[[], APIClient]:
        def make() -> APIClient:
            client = APIClient()
            if user is not None:
                client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(user)}")
            return client
        return make

    makers = {"anonymous": maker(None)}
    for name, role in [("no-role", None), ("viewer", "viewer"), ("operator-a", "operator"),
                       ("operator-b", "operator"), ("fleet-admin", "fleet-admin")]:
        makers[name] = maker(UserFactory(username=name, role=role))
    return makers


def fresh_objects() -> dict[str, int]:
    """An experiment owned by operator A with a failed job (retry-able) on a new agent."""
    owner = get_user_model().objects.get(username="operator-a")
    agent = AgentFactory()
    experiment = ExperimentFactory(owner=owner)
    job = JobFactory(experiment=experiment, agent=agent, status=JobStatus.FAILED)
    return {"experiments": experiment.pk, "jobs": job.pk, "agents": agent.pk}


BODIES = {
    ("POST", "/api/v1/experiments/"): {"name": "x"},
    ("POST", "/api/v1/experiments/plan/"): {"name": "x"},
    ("PATCH", "/api/v1/experiments/{id}/"): {"name": "renamed"},
    ("PUT", "/api/v1/experiments/{id}/"): {"name": "renamed"},
    ("PATCH", "/api/v1/agents/{id}/"): {"name": "renamed"},
    ("PUT", "/api/v1/agents/{id}/"): {"name": "renamed"},
    ("POST", "/api/v1/agents/"): {"url": "not a url", "token": "x"},
    ("POST", "/api/v1/auth/token/"): {"username": "nobody", "password": "wrong"},
    ("POST", "/api/v1/auth/session/"): {"username": "nobody", "password": "wrong"},
}


def refused(response) -> bool:
    """Whether authentication or permissions refused the call."""
    if response.status_code not in (401, 403):
        return False
    detail = str(response.json().get("detail", "")) if response.get("Content-Type", "").startswith(
        "application/json") else ""
    return any(message in detail for message in REFUSAL_MESSAGES)


def call(client: APIClient, method: str, path: str, ids: dict[str, int]):
    """Call one operation with the ids of the objects it is about."""
    resource = path.split("/")[3]
    url = path.replace("{id}", str(ids.get(resource, ids["experiments"])))
    body = BODIES.get((method, path), {})
    return getattr(client, method.lower())(url, body, format="json")


@override_settings(RUCKUS_LOGIN_THROTTLE="10000/min", RUCKUS_LOGIN_USER_THROTTLE="10000/min",
                   RUCKUS_REGISTRATION_KEY="registration-key-for-the-table")
def test_authorization_table(capsys):
    callers = make_callers()
    failures = []
    table = []
    for (method, path), allowed in sorted(RULES.items(), key=lambda item: (item[0][1], item[0][0])):
        row = []
        for caller in CALLERS:
            ids = fresh_objects()
            response = call(callers[caller](), method, path, ids)
            got_in = not refused(response)
            row.append("allowed" if got_in else "refused")
            if got_in != (caller in allowed):
                failures.append(f"{method} {path} as {caller}: {response.status_code} "
                                f"{getattr(response, 'data', None) or response.content[:200]!r}")
            # 502: the documented answer when the agent a call is about cannot be reached.
            if response.status_code >= 500 and response.status_code != 502:
                failures.append(f"{method} {path} as {caller}: server error {response.status_code}")
        table.append(f"| {method} {path} | " + " | ".join(row) + " |")
    with capsys.disabled():
        print("\n| operation | " + " | ".join(CALLERS) + " |\n|---|" + "---|" * len(CALLERS))
        print("\n".join(table))
    assert failures == [], "\n".join(failures)


def test_owner_is_set_from_the_request_never_from_the_body():
    callers = make_callers()
    AgentFactory(name="cpu")
    body = {
        "name": "mine", "owner": "operator-b", "owner_id": 1,
        "task": {"name": "wikipedia_summarization", "params": {"num_samples": 1, "seed": 1}},
        "models": [{"name": "smollm2-135m-instruct"}], "runtimes": [{"name": "transformers", "params": {}}],
        "agents": {"all": True}, "runs_per_job": 1,
    }
    response = callers["operator-a"]().post("/api/v1/experiments/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["owner"] == "operator-a"
    assert response.json()["can_manage"] is True
    assert Experiment.objects.get(pk=response.json()["id"]).owner.username == "operator-a"
    # Another operator sees it (reading is shared) but may not act on it, and the API says so.
    seen = callers["operator-b"]().get(f"/api/v1/experiments/{response.json()['id']}/").json()
    assert seen["can_manage"] is False
    refusal = callers["operator-b"]().post(f"/api/v1/experiments/{seen['id']}/cancel/")
    assert refusal.status_code == 403
    assert refusal.json()["detail"] == "you may only change your own experiments and their jobs"
    assert callers["fleet-admin"]().get(f"/api/v1/experiments/{seen['id']}/").json()["can_manage"] is True


def test_a_user_without_a_role_is_told_what_is_missing():
    callers = make_callers()
    response = callers["no-role"]().get("/api/v1/experiments/")
    assert response.status_code == 403
    assert "needs any role" in response.json()["detail"]
    me = callers["no-role"]().get("/api/v1/auth/me/").json()
    assert me["role"] is None
    assert me["permissions"] == {"view": False, "create_experiments": False, "manage_all_experiments": False,
                                 "manage_agents": False}
    viewer = callers["viewer"]().get("/api/v1/auth/me/").json()
    assert (viewer["role"], viewer["permissions"]["view"], viewer["permissions"]["create_experiments"]) == (
        "viewer", True, False)
    admin = callers["fleet-admin"]().get("/api/v1/auth/me/").json()
    assert admin["role"] == "fleet-admin"
    assert all(admin["permissions"].values())


# --- websocket ------------------------------------------------------------------------------------------------

@database_sync_to_async
def _ws_world():
    callers = {}
    for name, role in [("no-role", None), ("viewer", "viewer"), ("operator-b", "operator"),
                       ("fleet-admin", "fleet-admin"), ("operator-a", "operator")]:
        callers[name] = api_token(UserFactory(username=name, role=role))
    owner = UserFactory(username="operator-a")
    experiment = ExperimentFactory(owner=owner)
    job = JobFactory(experiment=experiment)
    return callers, experiment.pk, job.pk


@pytest.mark.django_db(transaction=True)
def test_websocket_subscriptions_follow_the_roles():
    async def scenario():
        tokens, experiment_id, job_id = await _ws_world()
        outcomes = {}
        for caller in ("anonymous", *tokens):
            query = "" if caller == "anonymous" else f"?token={tokens[caller]}"
            comm = WebsocketCommunicator(application, f"/ws/events/{query}")
            connected, _ = await comm.connect(timeout=5)
            assert connected
            if caller == "anonymous":
                assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
                outcomes[caller] = "closed 4401"
                await comm.disconnect()
                continue
            seen = []
            for target in ({"experiment": experiment_id}, {"job": job_id}, {"agents": True}):
                await comm.send_json_to({"type": "subscribe", **target})
                answer = await comm.receive_json_from(timeout=5)
                seen.append(answer["type"])
                if answer["type"] == "subscribed":
                    # The snapshot follows; the experiment's and job's can_manage are this user's.
                    event = await comm.receive_json_from(timeout=5)
                    if event["type"] in ("experiment.updated", "job.updated"):
                        assert event["data"]["can_manage"] is (caller in ("operator-a", "fleet-admin")), (
                            caller, event)
                    while await comm.receive_nothing(timeout=0.2) is False:
                        await comm.receive_json_from(timeout=1)
            outcomes[caller] = seen
            await comm.disconnect()
        return outcomes

    outcomes = asyncio.run(scenario())
    assert outcomes["anonymous"] == "closed 4401"
    assert outcomes["no-role"] == ["error", "error", "error"]
    for caller in ("viewer", "operator-a", "operator-b", "fleet-admin"):
        assert outcomes[caller] == ["subscribed", "subscribed", "subscribed"], (caller, outcomes[caller])
