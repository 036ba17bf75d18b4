"""Hostile input never makes a server error: each is a 400 whose body names the field or query parameter.

Deep JSON, NUL characters and lone surrogates in bodies (users' and agents'), junk page and filter parameters,
agent URLs that do not parse, over-long lists, and spreadsheet formulas in the CSV export.
"""

from __future__ import annotations

import csv
import io
import json
import secrets

import pytest
from rest_framework.test import APIClient

from agents.models import Agent
from common.catalog import task_params
from core.parsers import check_json_value, json_problem
from experiments.models import AttemptStatus, Experiment, JobAttempt, JobStatus
from experiments.services import experiment_create
from results.models import SampleResult
from results.services import job_result_store
from tests.factories import AgentFactory, agent_info, job_result

pytestmark = pytest.mark.django_db


def experiment_body(**changes: object) -> dict:
    """A valid experiment creation body."""
    body = {
        "name": "hostile",
        "task": {"name": "wikipedia_summarization", "params": {"num_samples": 1}},
        "models": [{"name": "smollm2-135m-instruct"}],
        "runtimes": [{"name": "transformers", "params": {}}],
        "agents": {"all": True},
        "runs_per_job": 1,
    }
    body.update(changes)
    return body


def post_raw(client: APIClient, url: str, text: str):
    """POST a JSON document given as text (so it may hold what json.dumps would not write)."""
    return client.generic("POST", url, text.encode("utf-8", "surrogatepass"), content_type="application/json")


def agent_client(agent: Agent) -> APIClient:
    """A client holding the agent's credential."""
    credential = agent.set_credential()
    agent.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
    return client


# --- JSON bodies -------------------------------------------------------------------------------------------------


def test_json_nested_beyond_the_parser_is_a_400_naming_the_field(api):
    deep = "[" * 50_000 + "]" * 50_000
    text = json.dumps(experiment_body()).replace('"params": {"num_samples": 1}', f'"params": {{"x": {deep}}}', 1)
    r = post_raw(api, "/api/v1/experiments/", text)
    assert r.status_code == 400, r.content
    assert r.json() == {"task": ["JSON nested deeper than 32 levels"]}
    assert not Experiment.objects.exists()


def test_json_a_little_too_deep_is_a_400_naming_the_field(api):
    deep: object = 1
    for _ in range(40):
        deep = {"a": deep}
    r = api.post("/api/v1/experiments/", experiment_body(runtimes=[{"name": "transformers", "params": deep}]),
                 format="json")
    assert r.status_code == 400 and r.json() == {"runtimes": ["JSON nested deeper than 32 levels"]}


def test_a_deep_top_level_array_is_a_400():
    r = post_raw(APIClient(), "/api/v1/agents/announce/", "[" * 60_000 + "]" * 60_000)
    assert r.status_code == 400 and r.json() == {"detail": "JSON nested deeper than 32 levels"}


@pytest.mark.parametrize(
    ("escape", "problem"), [("\\u0000", "NUL character"), ("\\ud800", "lone surrogate (\\ud800)")]
)
def test_nul_or_lone_surrogate_in_runtime_params_is_a_400_naming_the_path(api, escape, problem):
    text = json.dumps(experiment_body(runtimes=[{"name": "transformers", "params": {"device": "cpu"}}]))
    text = text.replace('"cpu"', f'"c{escape}pu"')
    r = post_raw(api, "/api/v1/experiments/", text)
    assert r.status_code == 400, r.content
    (message,) = r.json()["runtimes.0.params.device"]
    assert problem in message
    assert not Experiment.objects.exists()


def test_nul_in_task_params_key_is_a_400_naming_it(api):
    text = json.dumps(experiment_body()).replace('"num_samples"', '"num\\u0000samples"')
    r = post_raw(api, "/api/v1/experiments/", text)
    assert r.status_code == 400
    assert r.json() == {"task.params.num\\u0000samples": ["key contains a NUL character (\\u0000), which cannot be "
                                                          "stored"]}


def test_nul_in_agent_labels_is_a_400_naming_labels(api):
    agent = AgentFactory()
    text = json.dumps({"labels": ["gpu", "a\u0000b"]})
    r = api.generic("PATCH", f"/api/v1/agents/{agent.pk}/", text.encode(), content_type="application/json")
    assert r.status_code == 400 and "labels.1" in r.json() and "NUL" in r.json()["labels.1"][0]


def test_nul_in_a_form_field_is_a_400_naming_it(api):
    agent = AgentFactory()
    r = api.patch(f"/api/v1/agents/{agent.pk}/", "name=a%00b", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400 and "NUL" in r.json()["name"][0]


def test_agent_protocol_messages_are_checked_alike():
    agent = AgentFactory()
    client = agent_client(agent)
    text = json.dumps({"agent_id": str(agent.pk), "activity": "idle", "capabilities_hash": "x"})
    r = post_raw(client, f"/api/v1/agents/{agent.pk}/heartbeat/", text.replace('"x"', '"x\\u0000"'))
    assert r.status_code == 400 and "NUL" in r.json()["capabilities_hash"][0]
    exp = experiment_create(
        name="cb", task_name="wikipedia_summarization",
        task_params=task_params("wikipedia_summarization", {"num_samples": 2}),
        models=[{"name": "smollm2-135m-instruct"}], runtimes=[{"name": "transformers", "params": {}}],
        agents={"ids": [str(agent.pk)]}, runs_per_job=3,
    )
    job = exp.jobs.get()
    token = secrets.token_urlsafe(16)
    JobAttempt.objects.create(job=job, number=1, agent=agent, attempt_token=token, status=AttemptStatus.RUNNING)
    job.transition(JobStatus.ASSIGNED, reason="test", attempt=1)
    job.transition(JobStatus.RUNNING, reason="test")
    result = job_result(job.pk, token=token).model_dump(mode="json")
    result["runs"][1]["samples"][0]["output"] = "fine \ud83d\ude00 then \udc00"
    r = post_raw(client, f"/api/v1/jobs/{job.pk}/result/", json.dumps(result))
    assert r.status_code == 400, r.content
    assert "lone surrogate" in r.json()["runs.1.samples.0.output"][0]
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    # Over-long texts where the columns are narrower are cut to fit, never a database error.
    long = job_result(job.pk, token=token).model_dump(mode="json")
    for run in long["runs"]:
        run["samples"][0]["id"], run["samples"][0]["finish_reason"] = "x" * 300, "y" * 80
    r = client.post(f"/api/v1/jobs/{job.pk}/result/", long, format="json")
    assert r.status_code == 200, r.content
    stored = SampleResult.objects.filter(run__job=job).order_by("id").first()
    assert stored.sample_id == "x" * 200 and stored.finish_reason == "y" * 50
    info = agent_info().model_dump(mode="json")
    info.update(name="n" * 300, agent_version="v" * 80, protocol_version="1." + "9" * 40)
    r = client.post(f"/api/v1/agents/{agent.pk}/capabilities/", info, format="json")
    assert r.status_code == 200, r.content
    agent.refresh_from_db()
    assert agent.agent_version == "v" * 50 and len(agent.protocol_version) == 20


def test_check_json_value_names_the_field():
    assert json_problem({"a": ["ok", "b\x00"]}) == ("a.1", "contains a NUL character (\\u0000), which cannot be stored")
    assert json_problem([[[]]], limit=2) == ("body", "JSON nested deeper than 2 levels")
    assert json_problem({"a": [[]]}, limit=2) == ("a", "JSON nested deeper than 2 levels")
    assert json_problem({"ok": [1, 2.5, None, True]}) is None
    with pytest.raises(Exception) as info:
        check_json_value({"x": "\ud800"}, "task.params")
    assert "task.params.x" in str(info.value.detail)


# --- query parameters --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/experiments/", "/api/v1/jobs/", "/api/v1/agents/"])
@pytest.mark.parametrize(
    ("params", "name"),
    [
        ("limit=1e29", "limit"),
        ("limit=-1", "limit"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("offset=100000000000000000000000000000", "offset"),
        ("offset=1.5", "offset"),
        ("updated_after=2024-01-01T00:00:00%2B99:00", "updated_after"),
        ("updated_after=0001-01-01T00:00:00%2B23:00", "updated_after"),
        ("updated_after=9999-12-31T23:59:59-23:00", "updated_after"),
        ("updated_after=", "updated_after"),
        ("updated_after=yesterday", "updated_after"),
        ("search=a%00b", "search"),
        ("status=a%00b", "status"),
    ],
)
def test_junk_query_parameters_are_a_400_naming_them(api, url, params, name):
    r = api.get(f"{url}?{params}")
    assert r.status_code == 400, (r.status_code, r.content)
    assert name in r.json(), r.json()


@pytest.mark.parametrize("offset", ["%2B20:00", "-23:59:59.999999", "%2B00:00"])
def test_updated_after_with_any_iso_offset_is_answered(api, offset):
    """Postgres takes offsets up to 15:59 only: the value is compared in UTC."""
    exp = Experiment.objects.create(name="e", task_name="wikipedia_summarization")
    for url in ("/api/v1/experiments/", "/api/v1/jobs/", "/api/v1/agents/"):
        r = api.get(f"{url}?updated_after=2000-01-01T00:00:00{offset}")
        assert r.status_code == 200, (url, r.content)
    r = api.get(f"/api/v1/experiments/?updated_after=2999-01-01T00:00:00{offset}")
    assert r.json()["count"] == 0
    r = api.get(f"/api/v1/experiments/?updated_after=2000-01-01T00:00:00{offset}")
    assert [e["id"] for e in r.json()["results"]] == [exp.pk]


def test_a_huge_limit_is_lowered_to_the_largest_page(api, settings):
    settings.RUCKUS_MAX_PAGE_SIZE = 2
    for i in range(3):
        Experiment.objects.create(name=f"e{i}", task_name="wikipedia_summarization")
    r = api.get("/api/v1/experiments/?limit=100000000000000000000000000000")
    assert r.status_code == 200 and len(r.json()["results"]) == 2 and "limit=2" in r.json()["next"]


@pytest.mark.parametrize(
    "params", ["experiment=99999999999999999999999", "experiment=x", "agent=not-a-uuid", "agent=%00"]
)
def test_junk_job_filters_are_a_400(api, params):
    r = api.get(f"/api/v1/jobs/?{params}")
    assert r.status_code == 400, (r.status_code, r.content)
    assert params.split("=")[0] in r.json()


# --- agent URLs --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://①②⑦.0.0.1:1/", "http://xn--/", "http://a..b/", "http://" + "a" * 300 + "/",
                                 "http://[::1/", "http://127.0.0.1:99999/"])
def test_agent_url_that_does_not_parse_is_a_400_naming_url(api, settings, url):
    r = api.post("/api/v1/agents/", {"url": url, "token": "tok"}, format="json")
    assert r.status_code == 400, (r.status_code, r.content)
    assert list(r.json()) == ["url"]
    settings.RUCKUS_REGISTRATION_KEY = "right-key"
    r = APIClient().post("/api/v1/agents/announce/", {"url": url, "token": "tok", "registration_key": "right-key"},
                         format="json")
    assert r.status_code == 400, (r.status_code, r.content)
    assert list(r.json()) == ["url"]
    assert not Agent.objects.exists()


# --- list caps ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"requested_metrics": ["ttft_s"] * 101}, "requested_metrics"),
        ({"runtimes": [{"name": "transformers", "params": {}}] * 21}, "runtimes"),
        ({"models": [{"name": "smollm2-135m-instruct"}] * 51}, "models"),
        ({"agents": {"labels": ["gpu"] * 51}}, "agents"),
        ({"name": "n" * 201}, "name"),
        ({"description": "d" * 10_001}, "description"),
    ],
)
def test_over_long_lists_and_texts_are_a_400_naming_the_field(api, changes, field):
    r = api.post("/api/v1/experiments/", experiment_body(**changes), format="json")
    assert r.status_code == 400 and field in r.json(), r.json()


def test_agent_labels_are_capped(api):
    agent = AgentFactory()
    r = api.patch(f"/api/v1/agents/{agent.pk}/", {"labels": [f"l{i}" for i in range(51)]}, format="json")
    assert r.status_code == 400 and "labels" in r.json()


# --- CSV export --------------------------------------------------------------------------------------------------


def test_csv_export_defuses_spreadsheet_formulas(api):
    agent = AgentFactory(name="=HYPERLINK(\"http://evil\")")
    exp = experiment_create(
        name="csv", task_name="wikipedia_summarization",
        task_params=task_params("wikipedia_summarization", {"num_samples": 2}),
        models=[{"name": "smollm2-135m-instruct"}], runtimes=[{"name": "transformers", "params": {}}],
        agents={"ids": [str(agent.pk)]}, runs_per_job=2,
    )
    job = exp.jobs.get()
    job.hardware_fingerprint = "+cmd|' /C calc'!A0"
    job.save(update_fields=["hardware_fingerprint"])
    result = job_result(job.pk, runs=2)
    result.runs[1].metrics["@sum(1)"] = -3.5
    job_result_store(job=job, result=result)
    r = api.get(f"/api/v1/experiments/{exp.pk}/export/?format=csv")
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    header, body = rows[0], rows[1:]
    assert "'@sum(1)" in header
    cells = dict(zip(header, body[1], strict=True))
    assert cells["agent_name"] == "'=HYPERLINK(\"http://evil\")"
    assert cells["hardware_fingerprint"] == "'+cmd|' /C calc'!A0"
    # Numbers are written as numbers: a negative one stays as it is.
    assert cells["'@sum(1)"] == "-3.5"
    for row in rows:
        for cell in row:
            assert not cell or cell[0] not in "=+@\t\r" or cell.startswith("'"), cell


# --- websockets --------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_websocket_message_nested_too_deep_gets_an_error_message():
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from ruckus_server.asgi import application
    from tests.factories import UserFactory, api_token

    @database_sync_to_async
    def token() -> str:
        return api_token(UserFactory(username="ws-hostile", role="viewer"))

    comm = WebsocketCommunicator(application, f"/ws/events/?token={await token()}")
    connected, _ = await comm.connect(timeout=5)
    assert connected
    await comm.send_to(text_data="[" * 50_000 + "]" * 50_000)
    reply = await comm.receive_json_from(timeout=5)
    assert reply == {"type": "error", "message": "message is not valid JSON: JSON nested deeper than 32 levels"}
    await comm.send_to(text_data='{"type": "subscribe", "experiment": ' + "[" * 40 + "]" * 40 + "}")
    reply = await comm.receive_json_from(timeout=5)
    assert reply == {"type": "error", "message": "message refused: experiment: JSON nested deeper than 32 levels"}
    await comm.send_to(text_data='{"type": "subscribe", "experiment": "1\\u0000"}')
    reply = await comm.receive_json_from(timeout=5)
    assert reply == {"type": "error", "message": "experiment must be a positive integer id"}
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=5) == {"type": "pong"}
    await comm.disconnect()


def test_result_and_export_query_parameters_are_checked(api):
    exp = Experiment.objects.create(name="e", task_name="wikipedia_summarization")
    job = exp.jobs.create(model_name="m", runtime_name="transformers")
    r = api.get(f"/api/v1/jobs/{job.pk}/results/?samples=maybe")
    assert r.status_code == 400 and "samples" in r.json()
    assert api.get(f"/api/v1/jobs/{job.pk}/results/?samples=false").status_code == 200
    r = api.get(f"/api/v1/experiments/{exp.pk}/export/?format=xlsx")
    assert r.status_code == 400 and "format" in r.json()
    r = api.get(f"/api/v1/experiments/{exp.pk}/comparison/?metric=%00")
    assert r.status_code == 400 and "metric" in r.json()
    r = api.get(f"/api/v1/experiments/{exp.pk}/comparison/?metric=no_such_metric")
    assert r.status_code == 400 and "metric" in r.json()


def test_an_unknown_api_path_is_a_json_404(api):
    for path in ("/api/v1/experiments/1.5/", "/api/v1/experiments/null,null/export/", "/api/v1/nothing/"):
        r = api.delete(path)
        assert r.status_code == 404 and r.json() == {"detail": "Not found."}, path
    assert api.get("/api/v1/experiments").status_code == 301  # the trailing-slash redirect stays
    session = APIClient(enforce_csrf_checks=True)
    r = session.post("/api/v1/agents/0.5/activate/")
    assert r.status_code == 404 and r.json() == {"detail": "Not found."}


def test_the_plan_of_an_experiment_whose_agent_was_removed_matches_its_schema(api):
    from experiments.planning import Plan

    agent = AgentFactory()
    exp = experiment_create(
        name="plan", task_name="wikipedia_summarization",
        task_params=task_params("wikipedia_summarization", {"num_samples": 1}),
        models=[{"name": "smollm2-135m-instruct"}], runtimes=[{"name": "transformers", "params": {}}],
        agents={"ids": [str(agent.pk)]}, runs_per_job=1,
    )
    agent.delete()
    r = api.get(f"/api/v1/experiments/{exp.pk}/plan/")
    assert r.status_code == 200
    (job,) = r.json()["jobs"]
    assert "agent_id" not in job and "agent_name" not in job  # not the text "None"
    Plan.model_validate(r.json())


def test_a_body_django_refuses_to_read_is_a_json_400(api, settings):
    fields = "&".join(f"ids={i}" for i in range(1200))
    r = api.generic("POST", "/api/v1/experiments/", fields, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400 and "malformed request" in r.json()["detail"]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    r = api.post("/api/v1/experiments/", experiment_body(description="d" * 2000), format="json")
    assert r.status_code == 400 and r.json() == {"detail": "request body too large"}


def test_options_on_the_agents_callbacks_is_answered():
    agent = AgentFactory(mode="pull", url="")
    client = agent_client(agent)
    r = client.options(f"/api/v1/agents/{agent.pk}/work/")
    assert r.status_code == 200 and r.json()["name"]
    assert client.options("/api/v1/jobs/1/result/").status_code == 200


@pytest.mark.parametrize(("number", "problem"), [("1e400", "not a finite number"), ("-1e400", "not a finite number"),
                                                 ("9223372036854775808", "integers are between"),
                                                 ("-99999999999999999999999", "integers are between")])
def test_numbers_that_cannot_be_stored_or_sent_are_a_400_naming_the_field(api, number, problem):
    agent = AgentFactory()
    client = agent_client(agent)
    exp = experiment_create(
        name="n", task_name="wikipedia_summarization",
        task_params=task_params("wikipedia_summarization", {"num_samples": 2}),
        models=[{"name": "smollm2-135m-instruct"}], runtimes=[{"name": "transformers", "params": {}}],
        agents={"ids": [str(agent.pk)]}, runs_per_job=3,
    )
    job = exp.jobs.get()
    text = json.dumps({"job_id": str(job.pk), "attempt_token": "t" * 16, "samples_done": 0})
    r = post_raw(client, f"/api/v1/jobs/{job.pk}/progress/", text.replace('"samples_done": 0',
                                                                          f'"samples_done": {number}'))
    assert r.status_code == 400 and problem in r.json()["samples_done"][0]
    r = post_raw(api, "/api/v1/experiments/", json.dumps(experiment_body()).replace('"num_samples": 1',
                                                                                     f'"num_samples": {number}'))
    assert r.status_code == 400 and problem in r.json()["task.params.num_samples"][0]


def test_a_failed_event_push_does_not_fail_the_request(api, monkeypatch, django_capture_on_commit_callbacks):
    """The change is committed before the push; a push the layer refuses is logged, never a 500."""
    import core.events

    class RefusingLayer:
        async def group_send(self, group: str, message: dict) -> None:
            raise OverflowError("Integer value out of range")

    monkeypatch.setattr(core.events, "get_channel_layer", lambda: RefusingLayer())
    agent = AgentFactory()
    with django_capture_on_commit_callbacks(execute=True) as pushed:
        r = api.post(f"/api/v1/agents/{agent.pk}/deactivate/")
    assert pushed and r.status_code == 200 and r.json()["status"] == "deactivated"


# --- what agents answer the server -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (lambda info: info.replace('"agent_version":"0.1.0"', '"agent_version":"0.1\\u0000"'),
         "agent_version: contains a NUL character"),
        (lambda info: info.replace('"name":"host"', '"name":"h\\udc00"'), "name: contains a lone surrogate"),
        (lambda info: '{"name": ' + "[" * 5000 + "]" * 5000 + "}", "name: JSON nested deeper than 32 levels"),
    ],
)
def test_an_agent_answer_the_server_could_not_store_fails_the_registration(api, fake_agent, body, problem):
    from tests.factories import agent_info

    handler, port = fake_agent
    handler.body = body(agent_info().model_dump_json()).encode()
    r = api.post("/api/v1/agents/", {"url": f"http://127.0.0.1:{port}", "token": "tok"}, format="json")
    assert r.status_code == 502, r.content
    assert "does not follow the agent protocol" in r.json()["detail"] and problem in r.json()["detail"]
    assert not Agent.objects.exists()


@pytest.mark.parametrize("body", [{"runtimes": [{"params": {}}]}, {"task": {"params": {}}}])
def test_a_partial_update_with_nested_specs_missing_their_name_is_a_400(api, body):
    exp = Experiment.objects.create(name="e", task_name="wikipedia_summarization")
    r = api.patch(f"/api/v1/experiments/{exp.pk}/", body, format="json")
    assert r.status_code == 400, r.content
    assert "name" in json.dumps(r.json())


def test_params_are_checked_by_the_serializer_too_whatever_parser_read_them():
    from experiments.serializers import ExperimentSerializer

    deep: object = "x"
    for _ in range(40):
        deep = [deep]
    body = experiment_body(runtimes=[{"name": "transformers", "params": {"device": "c\x00pu"}}])
    body["task"]["params"]["titles"] = deep
    serializer = ExperimentSerializer(data=body)
    assert not serializer.is_valid()
    assert serializer.errors["task"]["params"] == ["titles: JSON nested deeper than 32 levels"]
    assert "device: contains a NUL character" in serializer.errors["runtimes"][0]["params"][0]


def test_too_many_query_parameters_is_a_json_400(api):
    r = api.get("/api/v1/experiments/?" + "&".join(f"x{i}=1" for i in range(1200)))
    assert r.status_code == 400 and "malformed request" in r.json()["detail"]
