"""Run telemetry: psutil signals, NVML absent, NVML replayed from recorded ``nvidia-smi -q -x`` files."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from defusedxml.ElementTree import parse as parse_xml

from agent_runtime.detection.values import parse_bytes, parse_float
from agent_runtime.engine import JobEngine
from agent_runtime.settings import Settings
from agent_runtime.spool import Spool
from agent_runtime.telemetry import Nvml, RunMonitor, nvml_status
from common.protocol import AgentJobState, JobRequest
from tests.helpers import wait_for

from .conftest import allowing, job_payload

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "telemetry"


class NVMLError(Exception):
    """Stands in for ``pynvml.NVMLError``."""


class RecordedNvml:
    """A ``pynvml`` look-alike answering from a recorded ``nvidia-smi -q -x`` report.

    A field the report shows as ``N/A`` (or lacks) raises ``NVMLError("Not Supported")``, as NVML
    does on the live board. The reports have no energy counter, so that query is unsupported too.
    """

    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVMLError = NVMLError

    def __init__(self, path: Path) -> None:
        root = parse_xml(path).getroot()
        self.gpus = []
        for node in root.findall("gpu"):

            def text(xpath: str, node=node) -> str | None:
                found = node.find(xpath)
                return found.text if found is not None else None

            self.gpus.append(
                {
                    "power_w": parse_float(text("power_readings/power_draw") or text("gpu_power_readings/power_draw")),
                    "util": parse_float(text("utilization/gpu_util")),
                    "used": parse_bytes(text("fb_memory_usage/used")),
                    "temp": parse_float(text("temperature/gpu_temp")),
                    "sm_clock": parse_float(text("clocks/sm_clock")),
                }
            )
        self.inits = 0
        self.shutdowns = 0
        self.power_reads = 0

    def _value(self, handle: int, key: str) -> float:
        value = self.gpus[handle][key]
        if value is None:
            raise NVMLError("Not Supported")
        return value

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        self.power_reads += 1
        return int(self._value(handle, "power_w") * 1000)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=self._value(handle, "util"), memory=0)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(used=self._value(handle, "used"))

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> float:
        return self._value(handle, "temp")

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> float:
        return self._value(handle, "sm_clock")

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        raise NVMLError("Not Supported")


def _busy(seconds: float) -> None:
    """Keep one core busy, so the CPU signal has something to see."""
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


def _aligned(series: dict[str, list[float]]) -> bool:
    return len({len(v) for v in series.values()}) == 1


def test_process_signals_at_the_configured_interval():
    monitor = RunMonitor(gpu=False, interval_s=0.05)
    monitor.start()
    _busy(0.4)
    report = monitor.stop()
    s = report.series
    assert {"t", "rss_bytes", "cpu_percent"} <= set(s) and _aligned(s)
    assert len(s["t"]) >= 5, s["t"]  # start + ~8 thread samples + stop
    assert s["t"] == sorted(s["t"]) and s["t"][0] < 0.01
    assert report.metrics["peak_rss_bytes"] == max(s["rss_bytes"]) > 10 * 2**20
    # A busy loop in this process: most of one core, measured from CPU times over the run.
    assert 40 < report.metrics["cpu_percent"] < 250
    assert max(s["cpu_percent"][1:]) > 20
    # GPU sampling not asked for: no GPU metric and no reason for one either.
    assert not any(k.startswith("gpu_") for k in (*report.metrics, *report.unavailable))


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="interval"):
        RunMonitor(interval_s=0)


def test_nvml_absent_is_reported_not_zero(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    assert nvml_status() == (False, "NVML unavailable: nvidia-ml-py is not installed")
    monitor = RunMonitor(gpu=True, gpu_memory=True, interval_s=0.05)
    monitor.start()
    report = monitor.stop()
    for metric in (
        "gpu_power_w",
        "gpu_utilization_pct",
        "energy_j",
        "gpu_temperature_c",
        "gpu_sm_clock_mhz",
        "peak_gpu_memory_bytes",
    ):
        assert metric not in report.metrics
        assert "nvidia-ml-py is not installed" in report.unavailable[metric]
    assert report.metrics["peak_rss_bytes"] > 0 and "cpu_percent" in report.metrics
    assert set(report.series) == {"t", "rss_bytes", "cpu_percent"}


def test_nvml_that_cannot_start_gives_its_reason():
    class NoDriver(RecordedNvml):
        def nvmlInit(self) -> None:
            raise NVMLError("Driver Not Loaded")

    nvml = Nvml(nvml=NoDriver(FIXTURES / "nvidia-smi-tesla-v100-v10.xml"))
    assert not nvml.available and nvml.reason == "NVML unavailable: Driver Not Loaded"
    report = _monitor_with(nvml)
    assert report.unavailable["gpu_power_w"] == "NVML unavailable: Driver Not Loaded"


def _monitor_with(nvml: Nvml, seconds: float = 0.25, **kwargs) -> object:
    monitor = RunMonitor(gpu=True, interval_s=0.05, nvml=nvml, **kwargs)
    monitor.start()
    time.sleep(seconds)
    return monitor.stop()


def test_recorded_v100_power_temperature_and_energy_from_power():
    fake = RecordedNvml(FIXTURES / "nvidia-smi-tesla-v100-v10.xml")
    nvml = Nvml(nvml=fake)
    assert nvml.available and len(nvml.handles) == 1
    t0 = time.perf_counter()
    report = _monitor_with(nvml, gpu_memory=True)
    elapsed = time.perf_counter() - t0
    s = report.series
    assert _aligned(s)
    assert s["gpu_power_w"] and s["gpu_power_w"] == pytest.approx([24.47] * len(s["t"]))
    assert report.metrics["gpu_power_w"] == pytest.approx(24.47)
    assert report.metrics["gpu_utilization_pct"] == 0.0  # the board reported 0 %: a reading, kept
    assert report.metrics["gpu_temperature_c"] == 36.0
    assert report.metrics["peak_gpu_memory_bytes"] == 0.0
    # The recorded board has no energy counter: energy is integrated from the sampled power.
    assert "gpu_energy_j" not in s
    assert report.metrics["energy_j"] == pytest.approx(24.47 * elapsed, rel=0.2)
    # No current SM clock in the report: unavailable with a reason, never zero.
    assert "gpu_sm_clock_mhz" not in report.metrics and "SM clock" in report.unavailable["gpu_sm_clock_mhz"]
    # The monitor did not create the wrapper, so it leaves NVML initialised for its owner.
    assert fake.shutdowns == 0


def test_recorded_h100_mig_board_without_power_or_utilization():
    path = FIXTURES / "nvidia-smi-2x-h100-mig-v12.xml"
    # Only the first board (MIG off): every signal it reports comes through.
    first = _monitor_with(Nvml([0], nvml=RecordedNvml(path)))
    assert first.metrics["gpu_power_w"] == pytest.approx(71.43)
    assert first.metrics["gpu_utilization_pct"] == 3.0
    assert first.metrics["gpu_temperature_c"] == 31.0
    # Both boards: the MIG board reports neither power nor utilization, so a sum or mean over the
    # two would be wrong: unavailable with the reason. Temperature is the hottest board.
    both = _monitor_with(Nvml(nvml=RecordedNvml(path)), gpu_memory=True)
    assert "gpu_power_w" not in both.metrics and "power" in both.unavailable["gpu_power_w"]
    assert "utilization" in both.unavailable["gpu_utilization_pct"]
    assert "energy_j" in both.unavailable
    assert both.metrics["gpu_temperature_c"] == 33.0
    assert both.metrics["peak_gpu_memory_bytes"] == (2 + 26) * 2**20
    assert _aligned(both.series)


def test_a_transient_failure_keeps_series_aligned():
    fake = RecordedNvml(FIXTURES / "nvidia-smi-tesla-v100-v10.xml")
    nvml = Nvml(nvml=fake)
    monitor = RunMonitor(gpu=True, interval_s=0.02, nvml=nvml)
    monitor.start()
    fake.gpus[0]["power_w"] = None  # the board stops answering for a while
    reads = fake.power_reads
    wait_for(lambda: fake.power_reads >= reads + 3, 10, 0.01, what="samples while the board is silent")
    fake.gpus[0]["power_w"] = 30.0
    reads = fake.power_reads
    wait_for(lambda: fake.power_reads >= reads + 3, 10, 0.01, what="samples once it answers again")
    report = monitor.stop()
    assert _aligned(report.series)
    assert all(round(v, 2) in (24.47, 30.0) for v in report.series["gpu_power_w"])
    assert report.series["gpu_power_w"][-1] == pytest.approx(30.0)


def test_setting_telemetry_interval(monkeypatch):
    assert Settings().telemetry_interval_s == 0.5
    monkeypatch.setenv("RUCKUS_AGENT_TELEMETRY_INTERVAL_S", "0.25")
    assert Settings().telemetry_interval_s == 0.25
    monkeypatch.setenv("RUCKUS_AGENT_TELEMETRY_INTERVAL_S", "0")
    with pytest.raises(ValueError, match="telemetry_interval_s"):
        Settings()


def test_transformers_job_carries_telemetry(tmp_path, tiny_model_dir):
    engine = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path, telemetry_interval_s=0.02,
                       policy=allowing(tmp_path, paths=(tiny_model_dir.parent,)))
    try:
        record, _ = engine.submit(JobRequest.model_validate(job_payload(tiny_model_dir, runs_per_job=2)))
        record.thread.join(60)
    finally:
        engine.shutdown(10)
    result = record.result
    assert result.status is AgentJobState.COMPLETED, result.error
    for run in result.runs:
        s = run.telemetry
        assert {"t", "rss_bytes", "cpu_percent"} <= set(s) and _aligned(s)
        assert len(s["t"]) >= 2
        assert run.metrics["peak_rss_bytes"] > 0 and run.metrics["cpu_percent"] > 0
        assert "cpu" in run.unavailable_metrics["gpu_power_w"]
    assert result.statistics == {}  # raw runs only: the server computes statistics
