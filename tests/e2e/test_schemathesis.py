"""Schemathesis against a live server: no server error, no answer that breaks the schema, no auth hole.

A real daphne over the test database, two users (a fleet admin and an operator, made with ``manage.py ruckus_user``)
and some data (pull agents, an experiment of each user with results). ``st run`` (the CLI) then sends generated
and mutated requests to every operation of ``/api/schema/`` with every check on, including ``ignored_auth``
(credentials left out or wrong), ``use_after_free``, ``ensure_resource_availability`` and
``object_level_authorization`` (the two users are peers: one must not get the other's objects where they are not
shared by design; in RUCKUS every role may read every experiment, so reads are shared).

What fails the test: any server error (5xx; registering an agent by URL answers a documented 502 when the agent
cannot be reached: allowed for that operation only), any answer whose status, content type, headers or body the
schema does not describe, and any failure of the authorization and resource checks. Reported, not failed:
``ST201``/``ST202``, requests the schema allows but the server refuses (or the reverse) for rules beyond the schema:
an unknown task name, a multipart body that cannot carry a nested object.

The token logout operations are left out: they would revoke the credentials the run uses. Request bodies are JSON,
the only format the schema advertises (the form parsers serve DRF's browsable API; a malformed multipart body is
answered by the HTTP server itself, Twisted under daphne, with a bare 400 before the application sees it).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import BIN, REPO, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Test cases per operation and phase: the whole run stays within a few minutes on two cores.
MAX_EXAMPLES = int(os.environ.get("RUCKUS_SCHEMATHESIS_EXAMPLES", "25"))
#: Fixed, so that a failure can be replayed (``st run ... --seed``); set another to explore.
SEED = int(os.environ.get("RUCKUS_SCHEMATHESIS_SEED", "20261130"))
#: Failure codes that fail the test (see ``st explain CODE``): server errors, schema conformance (status, content
#: type, headers, body), header and method handling, resources after create/delete, authentication, object-level
#: authorization.
FORBIDDEN = {
    "ST101", "ST102", "ST103", "ST104", "ST105", "ST106", "ST107", "ST108", "ST109", "ST110", "ST111",
    "ST203", "ST204", "ST205", "ST301", "ST302", "ST401", "ST402",
}
#: Register an agent by URL: the server calls the agent, and one that does not answer is a 502 (documented).
REGISTER = "POST /api/v1/agents/"
#: What an agent calls with its credential (the second run): its heartbeat, description and work requests, and
#: its job's progress and result.
AGENT_OPERATIONS = r"^/api/v1/(agents/\{id\}/(heartbeat|capabilities|work)|jobs/\{id\}/(progress|result))/$"


def make_user(stack: Stack, name: str, role: str) -> str:
    """Create a user with ``manage.py ruckus_user`` and return its API token."""
    out = subprocess.run(
        [sys.executable, "manage.py", "ruckus_user", name, "--role", role, "--no-password", "--token"],
        cwd=REPO, env=stack.env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    return next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("TOKEN="))


@dataclass
class Seeded:
    """What the agent run needs: a pull agent's id and credential, and a job running on it."""

    agent_id: str
    credential: str
    job_id: int


def seed(owners: list[str]) -> Seeded:
    """Two pull agents, per owner an experiment with a stored result, and a job running on the first agent.

    Everything is committed, so the server sees it.
    """
    from django.contrib.auth import get_user_model

    from common.catalog import task_params
    from common.statuses import AgentMode
    from experiments.models import JobAttempt, JobStatus
    from experiments.services import experiment_create
    from results.services import job_result_store
    from tests.factories import AgentFactory, job_result

    def create(owner: str, agents: dict[str, Any]) -> Any:
        return experiment_create(
            name=f"{owner}'s experiment", task_name="wikipedia_summarization",
            task_params=task_params("wikipedia_summarization", {"num_samples": 2}),
            models=[{"name": "smollm2-135m-instruct"}], runtimes=[{"name": "transformers", "params": {}}],
            agents=agents, runs_per_job=2, owner=get_user_model().objects.get(username=owner),
        )

    agents = [AgentFactory(name=f"seed-{i}", mode=AgentMode.PULL, url="", labels=["seed"]) for i in range(2)]
    for owner in owners:
        job = create(owner, {"all": True}).jobs.order_by("id").first()
        job.transition(JobStatus.ASSIGNED, reason="seed", attempt=1)
        job.transition(JobStatus.RUNNING, reason="seed")
        job_result_store(job=job, result=job_result(job.pk, runs=2))
        job.transition(JobStatus.COMPLETED, reason="seed")
    agent = agents[0]
    credential = agent.set_credential()
    agent.save()
    running = create(owners[0], {"ids": [str(agent.pk)]}).jobs.get()
    JobAttempt.objects.create(job=running, number=1, agent=agent, attempt_token=secrets.token_urlsafe(16))
    running.transition(JobStatus.ASSIGNED, reason="seed", attempt=1)
    running.transition(JobStatus.RUNNING, reason="seed")
    return Seeded(agent_id=str(agent.pk), credential=credential, job_id=running.pk)


def user_config(tmp: Path, tokens: dict[str, str]) -> Path:
    """The users' run: the Web Fuzzing Commons auth file (the two users, peers) and its configuration."""
    auth = {"auth": [{"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Token {token}"}]}
                     for name, token in tokens.items()]}
    (tmp / "auth.json").write_text(json.dumps(auth))
    config = tmp / "users.toml"
    config.write_text(
        "[auth.wfc]\n"
        f"path = {json.dumps(str(tmp / 'auth.json'))}\n"
        f"peers = {json.dumps(list(tokens))}\n\n"
        "[[operations]]\n"
        f"include-name = {json.dumps(REGISTER)}\n"
        'checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "502"]\n'
    )
    return config


def agent_config(tmp: Path, seeded: Seeded) -> Path:
    """The agent's run: its own id and its running job's id in the paths (another agent's would be refused)."""
    config = tmp / "agent.toml"
    config.write_text(
        "[[operations]]\n"
        'include-path-regex = "^/api/v1/agents/"\n'
        f"parameters = {{ \"path.id\" = {json.dumps(seeded.agent_id)} }}\n\n"
        "[[operations]]\n"
        'include-path-regex = "^/api/v1/jobs/"\n'
        f"parameters = {{ \"path.id\" = {seeded.job_id} }}\n"
    )
    return config


def run_st(tmp: Path, name: str, config: Path, schema: Path, base: str, *args: str
           ) -> tuple[dict[str, Any], str, float]:
    """Run ``st run`` with every check on; return its JSON report, its output and how long it took."""
    report_path = tmp / f"{name}-report.json"
    command = [
        str(BIN / "st"), "--config-file", str(config), "run", str(schema), "--url", base, "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--generation-database", "none", "--request-timeout", "30", "--workers", "1", "--no-color",
        "--report", "json", "--report-json-path", str(report_path), *args,
    ]
    started = time.monotonic()
    run = subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=540, check=False)
    seconds = time.monotonic() - started
    output = run.stdout + run.stderr
    (tmp / f"{name}.txt").write_text(output)
    assert report_path.exists(), output[-6000:]
    return json.loads(report_path.read_text()), output, seconds


def check_run(name: str, report: dict[str, Any], output: str, seconds: float) -> None:
    """Print the run's figures; fail on a forbidden failure or an error of the run other than flakiness."""
    line = f"{name}: {summary(report, seconds)}"
    print(line)
    assert report["operations"]["tested"] == report["operations"]["selected"], line
    bad = [f for f in report["failures"] if f["code"] in FORBIDDEN]
    assert not bad, f"{line}\n{section(output, 'FAILURES')[:8000]}"
    # Errors of the run itself: only Hypothesis's "inconsistent results" (a case whose outcome changed between
    # two sends, the server's state having moved on) may appear; anything else (a refused connection) fails.
    errors = section(output, "ERRORS")
    assert not report["errors"] or "Inconsistent results" in errors, f"{line}\n{errors[:6000]}"


def server_statuses(log: str) -> Counter[tuple[str, int]]:
    """``(operation path, status)`` of every 5xx answer in daphne's access log."""
    found: Counter[tuple[str, int]] = Counter()
    for method, path, code in re.findall(r'"([A-Z]+) (\S+)" (5\d\d) ', log):
        found[(f"{method} {path.split('?')[0]}", int(code))] += 1
    return found


def section(output: str, name: str) -> str:
    """One section of the CLI's output (``FAILURES``, ``ERRORS``), up to the next heading."""
    match = re.search(rf"=+ {name} =+\n(.*?)(?:\n=+ [A-Z]+ =+\n|\Z)", output, re.DOTALL)
    return match.group(1) if match else ""


def agent_answers(log_path: Path) -> int:
    """How many of the agent's requests got past its authentication (any answer other than 401)."""
    log = log_path.read_text(errors="replace")
    return len(re.findall(r'"[A-Z]+ /api/v1/(?:agents/[^/]+/(?:heartbeat|capabilities|work)|jobs/\d+/(?:progress|'
                          r'result))/" (?!401)\d{3} ', log))


def summary(report: dict[str, Any], seconds: float) -> str:
    """One line: operations, cases, failures by code, errors, duration."""
    failures = ", ".join(f"{f['code']} {f['title']} x{f['count']}" for f in report["failures"]) or "none"
    errors = ", ".join(f"{e['title']} x{e['count']}" for e in report["errors"]) or "none"
    return (
        f"schemathesis: {report['operations']['tested']}/{report['operations']['total']} operations, "
        f"{report['test_cases']['generated']} cases, failures: {failures}; errors: {errors}; {seconds:.0f} s"
    )


def test_schemathesis_finds_no_server_error_schema_violation_or_auth_hole(stack: Stack, tmp_path: Path):
    stack.env["RUCKUS_AGENT_HTTP_TIMEOUT_S"] = "2"  # registrations of generated URLs fail fast
    stack.env["RUCKUS_PULL_WAIT_S"] = "1"  # the pull agent's work requests are not held long
    stack.start_server()
    tokens = {"alice": make_user(stack, "alice", "fleet-admin"), "bob": make_user(stack, "bob", "operator")}
    seeded = seed(list(tokens))
    schema = httpx.get(f"{stack.base}/api/schema/", headers={"Authorization": f"Token {tokens['alice']}"}, timeout=60)
    assert schema.status_code == 200, schema.text
    schema_path = tmp_path / "openapi.json"
    schema_path.write_text(json.dumps(yaml.safe_load(schema.text)))

    print()
    # The agent first: the users' run may cancel its job and remove it.
    agent = run_st(tmp_path, "agent", agent_config(tmp_path, seeded), schema_path, stack.base,
                   "--include-path-regex", AGENT_OPERATIONS, "-H", f"Authorization: Bearer {seeded.credential}")
    users = run_st(tmp_path, "users", user_config(tmp_path, tokens), schema_path, stack.base,
                   "--exclude-path-regex", "/auth/token/logout")
    server_errors = server_statuses((tmp_path / "server.log").read_text(errors="replace"))
    print(f"server 5xx answers: {dict(server_errors) or 'none'}; full output in {tmp_path}")
    check_run("agent", *agent)
    check_run("users", *users)
    assert agent_answers(tmp_path / "server.log") >= 100, "the agent's credential was not accepted"
    undocumented = {key: n for key, n in server_errors.items() if not (key[1] == 502 and key[0] == REGISTER)}
    assert not undocumented, f"server errors: {undocumented}"
