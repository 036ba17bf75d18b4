"""``api_error_lines``: every shape of DRF error body the server sends, flattened to readable lines."""

from __future__ import annotations

import httpx
import pytest

from ruckus_cli.client import error_summary
from ruckus_cli.errors import MAX_TEXT_CHARS, api_error_lines
from ruckus_cli.files import ExperimentFile


def test_detail_is_the_message_alone():
    assert api_error_lines({"detail": "agent has jobs in progress"}) == ["agent has jobs in progress"]


def test_field_errors_one_line_per_message():
    body = {"name": ["This field is required.", "Too short."], "runs_per_job": ["must be between 1 and 100"]}
    assert api_error_lines(body) == [
        "name: This field is required.",
        "name: Too short.",
        "runs_per_job: must be between 1 and 100",
    ]


def test_nested_fields_are_dotted():
    body = {"task": {"params": {"num_samples": ["Ensure this value is greater than or equal to 1."]}}}
    assert api_error_lines(body) == ["task.params.num_samples: Ensure this value is greater than or equal to 1."]


def test_list_items_by_index_and_items_without_errors_skipped():
    body = {"models": [{}, {"name": ["unknown model 'x'"]}], "runtimes": [{"params": {"device": ["bad"]}}]}
    assert api_error_lines(body) == ["models.1.name: unknown model 'x'", "runtimes.0.params.device: bad"]


def test_non_field_errors_belong_to_their_object():
    assert api_error_lines({"non_field_errors": ["Unable to log in with provided credentials."]}) == [
        "body: Unable to log in with provided credentials."
    ]
    assert api_error_lines({"agents": {"non_field_errors": ["give ids or all"]}}) == ["agents: give ids or all"]
    assert api_error_lines({"models": [{"non_field_errors": ["duplicate"]}]}) == ["models.0: duplicate"]


def test_detail_among_other_keys_is_a_field():
    assert api_error_lines({"detail": "conflict", "job": 3}) == ["detail: conflict", "job: 3"]


def test_top_level_list_and_scalar():
    assert api_error_lines(["first", "second"]) == ["body: first", "body: second"]
    assert api_error_lines([{"x": ["bad"]}]) == ["0.x: bad"]
    assert api_error_lines(42) == ["42"]


def test_text_body_is_truncated_and_empty_body_gives_nothing():
    page = "<html>" + "x" * 1000
    assert api_error_lines(page) == [page[:MAX_TEXT_CHARS]]
    assert api_error_lines("") == []
    assert api_error_lines({}) == []


def test_locate_prefixes_field_lines():
    body = {"task": {"params": {"num_samples": ["too small"]}}, "non_field_errors": ["whole"]}
    lines = api_error_lines(body, locate=lambda path: f"exp.yaml:{len(path)}")
    assert lines == ["exp.yaml:23: task.params.num_samples: too small", "exp.yaml:4: body: whole"]
    assert api_error_lines({"detail": "not found"}, locate=lambda path: "never") == ["not found"]


@pytest.mark.parametrize(
    ("response", "summary"),
    [
        (httpx.Response(409, json={"detail": "job is completed"}), "job is completed"),
        (httpx.Response(400, json={"name": ["required"], "models": [{}, {"name": ["unknown"]}]}),
         "name: required; models.1.name: unknown"),
        (httpx.Response(502, text="Bad Gateway"), "Bad Gateway"),
        (httpx.Response(500, content=b""), ""),
    ],
)
def test_error_summary_of_a_response(response: httpx.Response, summary: str):
    assert error_summary(response) == summary


def test_experiment_file_errors_name_their_lines(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: x\ntask:\n  params:\n    num_samples: -1\nmodels:\n  - name: a\n  - name: b\n")
    body = {"task": {"params": {"num_samples": ["too small"]}}, "models": [{}, {"name": ["unknown"]}]}
    assert ExperimentFile(path).explain(body).splitlines() == [
        f"{path}:4: task.params.num_samples: too small",
        f"{path}:7: models.1.name: unknown",
    ]
