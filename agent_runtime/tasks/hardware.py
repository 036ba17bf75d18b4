"""The ``hardware_benchmark`` task: the agent's memory bandwidth and matmul throughput, no model."""

from __future__ import annotations

from collections.abc import Callable

from agent_runtime.hwbench import BenchmarkConfig, BenchmarkStopped, run_benchmark, save_latest
from agent_runtime.tasks.base import Measurement, MeasurementTask
from common.catalog import HardwareBenchmarkParams


class StoppedError(RuntimeError):
    """The benchmark stopped because the job was cancelled or ran out of time."""


class HardwareBenchmark(MeasurementTask):
    """Measures the host with :mod:`agent_runtime.hwbench`; every run is a complete benchmark."""

    name = "hardware_benchmark"
    params: HardwareBenchmarkParams

    def measure(self, *, device: str, should_stop: Callable[[], bool], telemetry_interval_s: float) -> Measurement:
        """Run the benchmark on ``device``, store it as the agent's latest, and flatten it into metrics.

        Args:
            device: Device the runtime resolved.
            should_stop: Returns True when the job must stop.
            telemetry_interval_s: Telemetry sampling interval.

        Returns:
            Figures as ``bandwidth_gbps.<device>.<kind>`` / ``tflops.<device>.<precision>`` /
            ``gflops.cpu.<precision>`` metrics, unsupported figures with their reasons, the telemetry
            summary and series, and the full result as ``payload``.

        Raises:
            StoppedError: The job was cancelled or timed out during the benchmark.
        """
        config = BenchmarkConfig(
            device=device,
            quick=self.params.quick,
            repeats=self.params.repeats,
            telemetry_interval_s=telemetry_interval_s,
        )
        try:
            result = run_benchmark(config, should_stop=should_stop)
        except BenchmarkStopped as exc:
            raise StoppedError(str(exc)) from exc
        save_latest(self.data_dir, result)
        metrics, unavailable = result.flatten()
        metrics.update(result.telemetry_summary)
        for key, reason in result.telemetry_unavailable.items():
            unavailable.setdefault(key, reason)
        notes = [
            f"each figure is the best of {result.repeats} timed repeats (warm-up excluded), as STREAM reports "
            "it; the benchmark result keeps the mean and statistics of the repeats; "
            "bandwidth counts bytes read + written for copies, bytes moved once for host<->device transfers"
        ]
        return Measurement(
            metrics=metrics, unavailable=unavailable, telemetry=result.telemetry, notes=notes, payload=result
        )
