"""Project-level checks: migrations match the models, the OpenAPI schema validates, admin pages render."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from tests.factories import AgentFactory, JobFactory


@pytest.mark.django_db
def test_no_missing_migrations():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)


def test_openapi_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    for path in ("/api/v1/experiments/", "/api/v1/jobs/{id}/retry/", "/api/v1/experiments/{id}/comparison/"):
        assert path in text


@pytest.mark.django_db
def test_docs_pages_render(client, django_user_model):
    django_user_model.objects.create_user("bob", password="pw-bob-123456")
    assert client.get("/api/schema/").status_code in (401, 403)
    client.login(username="bob", password="pw-bob-123456")
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/api/redoc/").status_code == 200


@pytest.mark.django_db
def test_admin_pages_render_for_every_model(admin_client):
    job = JobFactory(agent=AgentFactory())
    for url in (
        "/admin/agents/agent/",
        f"/admin/agents/agent/{job.agent_id}/change/",
        "/admin/experiments/experiment/",
        f"/admin/experiments/experiment/{job.experiment_id}/change/",
        "/admin/experiments/job/",
        f"/admin/experiments/job/{job.pk}/change/",
        "/admin/experiments/jobattempt/",
        "/admin/core/statetransition/",
        "/admin/results/jobresult/",
        "/admin/results/runresult/",
        "/admin/results/jobmetricstatistics/",
    ):
        assert admin_client.get(url).status_code == 200, url


def test_logged_exceptions_do_not_print_local_variables():
    """Tracebacks in the server's console log stay plain: no frame locals (secrets, querysets) are rendered."""
    import logging

    import structlog
    from django.conf import settings

    spec = settings.LOGGING["formatters"]["console"]
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=spec["processors"], foreign_pre_chain=spec["foreign_pre_chain"]
    )

    def failing() -> None:
        agent_credential = "do-not-print-this-credential"  # noqa: F841 - the local the log must not show
        raise RuntimeError("pass failed")

    try:
        failing()
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "scheduler_pass_failed", None, sys.exc_info())
    text = formatter.format(record)
    assert "RuntimeError: pass failed" in text and "failing" in text
    assert "do-not-print-this-credential" not in text

