"""White-box ``hardware`` runtime: the agent's own hardware, measured with torch (no model).

It runs measurement tasks (``hardware_benchmark``): the engine asks it for the device and calls the
task; there is nothing to load and nothing to generate.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from agent_runtime.hwbench import DeviceUnavailable, resolve_device
from agent_runtime.runtimes.base import Generation, Runtime, RuntimeFailure, StopCheck, gpu_host_metrics
from agent_runtime.tasks.base import GenerationSettings, Sample, Task
from common.catalog import HardwareParams, measurement_tasks
from common.protocol import AgentInfo, RuntimeCapability

#: Tasks this runtime runs (catalogue tasks that need no model).
MEASUREMENT_TASKS = tuple(measurement_tasks())


class HardwareRuntime(Runtime):
    """Runs host measurement tasks on the device its params (or the task's params) name."""

    name = "hardware"
    params: HardwareParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.device = "cpu"

    @classmethod
    def capability(cls, info: AgentInfo) -> RuntimeCapability:
        """Available when torch imports; the GPU telemetry metrics need a CUDA GPU and NVML."""
        rdef = cls.definition()
        torch_fw = next((f for f in info.frameworks if f.name == "torch"), None)
        torch_ok = torch_fw.available if torch_fw is not None else importlib.util.find_spec("torch") is not None
        if not torch_ok:
            reason = (torch_fw.reason if torch_fw else None) or "torch is not installed"
            return RuntimeCapability(
                name=cls.name,
                access_mode=rdef.access_mode,
                available=False,
                reason=f"torch unavailable: {reason}",
                unavailable_metrics={m: "runtime unavailable" for m in (*rdef.metrics, *rdef.gpu_metrics)},
            )
        has_cuda = any((g.backend or "") == "cuda" for g in info.gpus) or bool(
            torch_fw and torch_fw.features.get("cuda")
        )
        gpu_metrics, unavailable = gpu_host_metrics(info, rdef.gpu_metrics, gpu=bool(has_cuda))
        metrics = [*rdef.metrics, *gpu_metrics]
        return RuntimeCapability(
            name=cls.name,
            access_mode=rdef.access_mode,
            available=True,
            metrics=metrics,
            unavailable_metrics=unavailable,
        )

    def requested_device(self) -> str:
        """The task's ``device`` when it names one, else the runtime's (both default to ``auto``)."""
        task_device = self.request.task.params.get("device", "auto")
        return task_device if task_device != "auto" else self.params.device

    def check(self) -> dict[str, str]:
        """The task must be a measurement task and an explicit device must exist here."""
        if self.request.task.name not in MEASUREMENT_TASKS:
            return {"runtime.name": f"the hardware runtime runs {', '.join(MEASUREMENT_TASKS)} only"}
        try:
            resolve_device(self.requested_device())
        except DeviceUnavailable as exc:
            field = (
                "task.params.device"
                if self.request.task.params.get("device", "auto") != "auto"
                else "runtime.params.device"
            )
            return {field: str(exc)}
        return {}

    def prepare(self) -> None:
        """Resolve the device."""
        try:
            self.device = resolve_device(self.requested_device())
        except DeviceUnavailable as exc:
            raise RuntimeFailure(str(exc)) from exc

    def load(self) -> float | None:
        """Nothing to load."""
        return None

    def model_load_unavailable_reason(self) -> str | None:
        """There is no model."""
        return "the hardware runtime loads no model"

    def generate(self, task: Task, sample: Sample, settings: GenerationSettings, should_stop: StopCheck) -> Generation:
        """Not a generation runtime.

        Raises:
            RuntimeFailure: Always.
        """
        raise RuntimeFailure(f"the hardware runtime runs {', '.join(MEASUREMENT_TASKS)} only, not {task.name}")

    def describe(self) -> dict[str, Any]:
        """The device measured."""
        return {"device": self.device}
