"""An agent's local inference servers and a gray-box job's server-side figures, from the API to the CLI.

The server stores what the agent reports (``AgentInfo.local_servers``, ``RuntimeCapability.served_models``) and the
statistics of the inference server's own figures (``server_ttft_s`` ...) like any run metric; ``ruckus agents
show`` and ``ruckus results show`` print them from the API's real response bodies (served without a network).

The gray-box job below has three runs (the first cold): client TTFT 0.5 (cold), 0.12 and 0.14 s against the
server's 0.4, 0.10 and 0.10 s, so the warm means are 0.13 (client) and 0.10 (server): the server's figure is
(0.10 - 0.13) / 0.13 = -23.1% of the client's.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from common.metrics import SERVER_FIGURES
from common.protocol import AgentInfo, LocalServer, MultiRunJobResult, SingleRunResult
from results.api_schemas import ExperimentResults
from ruckus_cli import output
from ruckus_cli.client import Api
from ruckus_cli.commands import agents as agents_command
from ruckus_cli.commands import results as results_command
from ruckus_cli.commands.results import CLIENT_HEADING, SERVER_HEADING
from ruckus_cli.config import Config
from ruckus_cli.main import app
from tests.factories import AgentFactory, ExperimentFactory, JobFactory, agent_info, job_result, store_scored

pytestmark = pytest.mark.django_db

MODEL = "Qwen/Qwen2.5-0.5B-Instruct"

#: (client, server) figures of each run, by metric pair; run 1 is the cold run.
RUNS: list[dict[str, float]] = [
    {"ttft_s": 0.5, "server_ttft_s": 0.4, "e2e_latency_s": 2.0, "server_e2e_latency_s": 1.9,
     "output_tokens": 64, "server_generation_tokens": 64, "server_requests": 4, "output_tokens_per_s": 30.0},
    {"ttft_s": 0.12, "server_ttft_s": 0.10, "e2e_latency_s": 1.0, "server_e2e_latency_s": 0.95,
     "output_tokens": 64, "server_generation_tokens": 64, "server_requests": 4, "output_tokens_per_s": 60.0},
    {"ttft_s": 0.14, "server_ttft_s": 0.10, "e2e_latency_s": 1.2, "server_e2e_latency_s": 1.05,
     "output_tokens": 64, "server_generation_tokens": 64, "server_requests": 4, "output_tokens_per_s": 55.0},
]


def gray_box_info() -> AgentInfo:
    """A host with a probed vLLM server that answers and a configured llama.cpp server that is down."""
    info = agent_info(runtimes=("transformers", "vllm"))
    for cap in info.runtimes:
        if cap.name == "vllm":
            cap.served_models = [MODEL]
        elif cap.name == "llamacpp_server":
            cap.served_models = []
    info.local_servers = [
        LocalServer(runtime="llamacpp_server", url="http://127.0.0.1:8080", source="configured", available=False,
                    reason="ConnectError: [Errno 111] Connection refused", metrics_reason="the server does not answer"),
        LocalServer(runtime="vllm", url="http://127.0.0.1:8000", metrics_url="http://127.0.0.1:8000/metrics",
                    source="probed", available=True, engine="vllm", engine_version="0.6.3", models=[MODEL],
                    metrics_available=True),
    ]
    return info


def gray_box_result(job_id: int) -> MultiRunJobResult:
    """The vLLM job's result: client and server figures of each run."""
    runs = [SingleRunResult(run_index=i + 1, cold_start=i == 0, metrics=dict(m)) for i, m in enumerate(RUNS)]
    return MultiRunJobResult(job_id=str(job_id), attempt=1, attempt_token="t" * 16, task="wikipedia_summarization",
                             model=MODEL, runtime="vllm", runs_per_job=3, runs=runs, cold_start=runs[0].metrics)


def _serve(monkeypatch: pytest.MonkeyPatch, body: dict[str, Any]) -> None:
    """Have the CLI's commands receive ``body`` for any request."""

    def connect(server: str | None, token: str | None) -> Api:
        api = Api(Config("http://ruckus.test", "token"))
        api._http = httpx.Client(base_url="http://ruckus.test",
                                 transport=httpx.MockTransport(lambda request: httpx.Response(200, json=body)))
        return api

    monkeypatch.setattr(agents_command, "connect", connect)
    monkeypatch.setattr(results_command, "connect", connect)
    monkeypatch.setattr(output, "console", Console(width=400))
    monkeypatch.setattr(results_command, "console", output.console)


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _line(text: str, *needles: str) -> str:
    return next(line for line in text.splitlines() if all(n in line for n in needles))


def test_agent_api_and_cli_list_local_servers(api, monkeypatch):
    agent = AgentFactory(name="vllm-host", info=gray_box_info())
    body = api.get(f"/api/v1/agents/{agent.pk}/").json()
    servers = body["capabilities"]["local_servers"]
    assert [s["runtime"] for s in servers] == ["llamacpp_server", "vllm"]
    assert servers[1]["engine_version"] == "0.6.3" and servers[1]["metrics_available"] is True
    runtimes = {r["name"]: r for r in body["capabilities"]["runtimes"]}
    assert runtimes["vllm"]["served_models"] == [MODEL] and runtimes["transformers"]["served_models"] is None

    _serve(monkeypatch, body)
    text = _cli("agents", "show", str(agent.pk))
    assert "Local inference servers of vllm-host" in text
    vllm = _line(text, "http://127.0.0.1:8000")
    for cell in ("vllm", "probed", "answering", "vllm 0.6.3", MODEL, "ok"):
        assert cell in vllm
    down = _line(text, "http://127.0.0.1:8080")
    assert "configured" in down and "not answering: ConnectError: [Errno 111] Connection refused" in down
    assert "unavailable: the server does not answer" in down
    # Answering servers first.
    assert text.index("http://127.0.0.1:8000") < text.index("http://127.0.0.1:8080")
    # Gray-box runtimes say which models they serve; the others keep their line as it was.
    assert f"available; serves {MODEL}" in _line(text, "runtime vllm")
    assert _line(text, "runtime transformers").split("runtime transformers", 1)[1].strip(" │|") == "available"


def test_agent_without_local_servers_prints_no_servers_table(api, monkeypatch):
    agent = AgentFactory(name="plain")
    _serve(monkeypatch, api.get(f"/api/v1/agents/{agent.pk}/").json())
    assert "Local inference servers" not in _cli("agents", "show", str(agent.pk))


@pytest.fixture
def experiment():
    """An experiment with a vLLM job (server figures) and a transformers job (none)."""
    exp = ExperimentFactory(name="gray box")
    agent = AgentFactory(name="vllm-host", info=gray_box_info())
    vllm = JobFactory(experiment=exp, agent=agent, model_spec={"name": MODEL}, model_name=MODEL,
                      runtime_spec={"name": "vllm", "params": {}}, runtime_name="vllm")
    plain = JobFactory(experiment=exp, agent=agent)
    store_scored(job=vllm, result=gray_box_result(vllm.pk))
    store_scored(job=plain, result=job_result(plain.pk))
    return exp


def test_results_api_has_server_figures_next_to_the_clients(api, experiment):
    body = api.get(f"/api/v1/experiments/{experiment.pk}/results/").json()
    ExperimentResults.model_validate(body)
    by_runtime = {j["runtime"]: j for j in body["jobs"]}
    stats = by_runtime["vllm"]["statistics"]
    assert stats["server_ttft_s"]["scope"] == "run" and stats["server_ttft_s"]["unit"] == "s"
    assert stats["server_ttft_s"]["mean"] == pytest.approx(0.10) and stats["ttft_s"]["mean"] == pytest.approx(0.13)
    assert stats["server_ttft_s"]["n"] == 2  # warm runs only, as for the client's figure
    assert not set(SERVER_FIGURES) & set(by_runtime["transformers"]["statistics"])
    described = {m["name"] for m in body["metrics"]}
    assert {"server_ttft_s", "server_e2e_latency_s", "server_generation_tokens"} <= described


def test_cli_prints_client_vs_server_for_gray_box_jobs_only(api, experiment, monkeypatch):
    body = api.get(f"/api/v1/experiments/{experiment.pk}/results/").json()
    _serve(monkeypatch, body)
    text = _cli("results", "show", str(experiment.pk))
    # The per-job table comes first, as before; the new section follows it.
    assert text.index(f"Experiment #{experiment.pk}: warm runs") < text.index("Client (RUCKUS) vs")
    assert "Client (RUCKUS) vs the inference server's own metrics" in text
    assert CLIENT_HEADING in text and SERVER_HEADING in text
    ttft = _line(text, "ttft_s vs server_ttft_s")
    assert "0.13 s (n=2)" in ttft and "0.1 s (n=2)" in ttft and "-23.1%" in ttft
    e2e = _line(text, "e2e_latency_s vs server_e2e_latency_s")
    assert "1.1 s (n=2)" in e2e and "-9.1%" in e2e
    assert "+0.0%" in _line(text, "output_tokens vs server_generation_tokens")
    requests = _line(text, "— vs server_requests")
    assert "4 (n=2)" in requests and requests.count("—") >= 2  # no client counterpart: no client cell, no difference
    section = text[text.index("Client (RUCKUS) vs"):]
    assert "/ transformers /" not in section  # the white-box job has no server figures

    # CSV and JSON stay as they were: no new columns.
    csv_text = _cli("results", "show", str(experiment.pk), "--format", "csv")
    assert "server_" not in csv_text.splitlines()[0]


def test_cli_prints_no_server_section_without_server_figures(api, monkeypatch):
    exp = ExperimentFactory(name="white box")
    job = JobFactory(experiment=exp)
    store_scored(job=job, result=job_result(job.pk))
    _serve(monkeypatch, api.get(f"/api/v1/experiments/{exp.pk}/results/").json())
    text = _cli("results", "show", str(exp.pk))
    assert "inference server" not in text
