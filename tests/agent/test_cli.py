import json

import pytest
from typer.testing import CliRunner

from agent_runtime.cli import app
from agent_runtime.settings import Settings

runner = CliRunner()


def test_info_json_prints_agent_info(tmp_path):
    result = runner.invoke(app, ["info", "--json", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["type"] == "agent.info"
    names = {r["name"]: r for r in info["runtimes"]}
    assert names["transformers"]["available"] is True
    assert "peak_gpu_memory_bytes" in names["transformers"]["unavailable_metrics"]


def test_info_rejects_missing_file(tmp_path):
    result = runner.invoke(app, ["info", "--json", "--nvidia-smi-xml", str(tmp_path / "none.xml")])
    assert result.exit_code == 2


def test_serve_needs_a_token(tmp_path, monkeypatch):
    monkeypatch.delenv("RUCKUS_AGENT_TOKEN", raising=False)
    result = runner.invoke(app, ["serve", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "token" in result.output


def test_settings_are_strict(monkeypatch):
    monkeypatch.setenv("RUCKUS_AGENT_HEARTBEAT_INTERVAL_S", "2.5")
    assert Settings().heartbeat_interval_s == 2.5
    monkeypatch.setenv("RUCKUS_AGENT_PORT", "not-a-port")
    with pytest.raises(ValueError, match="port"):
        Settings()
    with pytest.raises(ValueError, match="token"):
        Settings(token="short")
    with pytest.raises(ValueError, match="extra"):
        Settings(no_such_setting=1)
    monkeypatch.delenv("RUCKUS_AGENT_PORT")
    monkeypatch.setenv("RUCKUS_AGENT_TOKN", "typo-typo-typo")
    with pytest.raises(ValueError, match="RUCKUS_AGENT_TOKN"):
        Settings()


def test_prepare_models_is_idempotent(smollm2_dir):
    from .conftest import MODEL_CACHE

    result = runner.invoke(app, ["prepare-models", "--data-dir", str(MODEL_CACHE)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["path"] == str(smollm2_dir)


@pytest.mark.parametrize("variable", ["RUCKUS_AGENT_TOKEN", "RUCKUS_AGENT_REGISTRATION_KEY"])
def test_example_placeholders_are_refused_at_start_up(variable, monkeypatch):
    monkeypatch.setenv(variable, "change-me-agent-token")
    with pytest.raises(ValueError, match="example placeholder"):
        Settings()


@pytest.mark.parametrize(("host", "wildcard"), [("0.0.0.0", True), ("::", True), ("", True),
                                                ("127.0.0.1", False), ("agent.lan", False)])
def test_advertised_url_names_the_host_for_a_wildcard_listen_address(host, wildcard):
    import socket

    url = Settings(host=host, port=8100).advertised_url()
    expected_host = socket.gethostname() if wildcard else host
    assert url == f"http://{expected_host}:8100"
