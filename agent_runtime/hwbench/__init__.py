"""Hardware benchmark: the agent's measured peaks (memory bandwidth, matmul throughput per precision).

Figures (see :class:`~common.protocol.BenchmarkFigure`), flattened into run metrics as
``<name>.<device>.<precision-or-kind>``:

* ``bandwidth_gbps.cpu.copy``: CPU memory bandwidth (torch copy, bytes read + written), everywhere;
* ``bandwidth_gbps.<gpu>.d2d``: device copy (bytes read + written), sizes adapted to free memory;
* ``bandwidth_gbps.<gpu>.h2d`` / ``.d2h``: pinned host <-> device transfers (bytes moved once);
* ``tflops.<gpu>.<precision>`` for fp32, tf32, fp16, bf16, int8 (TOP/s) and fp8;
* ``gflops.cpu.<precision>`` for fp32 and bf16.

A figure the hardware or software cannot produce is reported unsupported with the reason, never as
zero. Each supported figure is a best-of-N peak, as STREAM reports it: its best repeat (``best``), with
statistics over every timed repeat (warm-up excluded) next to it, whose outlier rule flags only the slow
repeats (a busy host slows a repeat down; nothing speeds one past the hardware). Entry points:
:func:`run_benchmark` (CLI ``ruckus-agent benchmark`` and the ``hardware_benchmark`` job task),
:meth:`~common.protocol.HardwareBenchmarkResult.flatten` (run metrics), :func:`save_latest` /
:func:`load_latest` (``AgentInfo.benchmarks``).
"""

from __future__ import annotations

from agent_runtime.hwbench.figures import BANDWIDTH, GFLOPS, TFLOPS
from agent_runtime.hwbench.runner import DEFAULT_REPEATS, BenchmarkConfig, run_benchmark
from agent_runtime.hwbench.store import latest_path, load_latest, save_latest
from agent_runtime.hwbench.support import DeviceUnavailable, resolve_device
from agent_runtime.hwbench.timing import BenchmarkStopped

__all__ = [
    "BANDWIDTH",
    "DEFAULT_REPEATS",
    "GFLOPS",
    "TFLOPS",
    "BenchmarkConfig",
    "BenchmarkStopped",
    "DeviceUnavailable",
    "latest_path",
    "load_latest",
    "resolve_device",
    "run_benchmark",
    "save_latest",
]
