"""``nvidia-smi`` outputs: the ``-q -x`` XML report and the ``--query-gpu`` CSV, live or recorded.

The XML schema changed over the years (DTD v10 to v13): power limits moved from
``power_readings/enforced_power_limit`` to ``gpu_power_readings/current_power_limit``, MIG and
``product_architecture`` appeared, and no version reports the compute capability, which therefore
comes from the product-name table in :mod:`agent_runtime.detection.tensor_cores`. Every field is
optional here; placeholders (``N/A``, ``[Not Supported]``) become None.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element

# defusedxml refuses entity-expansion tricks in files handed to `ruckus-agent info` (a dependency of the agent).
from defusedxml.ElementTree import fromstring as _xml_fromstring

from common.protocol import GpuInfo

from .tensor_cores import describe_nvidia_gpu
from .values import clean, parse_bytes, parse_float

#: Wall-clock limit of a live ``nvidia-smi`` call; it normally answers in ~100 ms, a hung driver never.
NVIDIA_SMI_TIMEOUT_S = 1.5

#: ``--query-gpu`` fields the live CSV probe asks for (all exist since driver 510).
QUERY_GPU_FIELDS = (
    "index,name,uuid,pci.bus_id,driver_version,memory.total,memory.free,compute_cap,clocks.max.sm,"
    "clocks.max.memory,enforced.power.limit,temperature.gpu,utilization.gpu,mig.mode.current"
)


def _text(node: Element | None, *paths: str) -> str | None:
    """First non-placeholder text found at one of ``paths`` below ``node``."""
    if node is None:
        return None
    for path in paths:
        value = clean(node.findtext(path))
        if value is not None:
            return value
    return None


def parse_nvidia_smi_xml(text: str | bytes) -> list[GpuInfo]:
    """Parse the output of ``nvidia-smi -q -x``.

    Args:
        text: The XML document (any schema version, Linux or Windows).

    Returns:
        One :class:`GpuInfo` per ``<gpu>`` element, in the order nvidia-smi lists them (its index
        order). A MIG-enabled GPU is one entry with ``mig_mode="Enabled"`` and its full memory.

    Raises:
        ValueError: The text is not an nvidia-smi XML report.
    """
    try:
        root = _xml_fromstring(text)
    except Exception as exc:  # ParseError, or defusedxml's refusals
        raise ValueError(f"not a readable XML document: {exc}") from exc
    if root.tag != "nvidia_smi_log":
        raise ValueError(f"root element is <{root.tag}>, expected <nvidia_smi_log>")
    driver = _text(root, "driver_version")
    cuda = _text(root, "cuda_version")
    gpus: list[GpuInfo] = []
    for position, node in enumerate(root.findall("gpu")):
        name = _text(node, "product_name") or "unknown"
        virtualization = _text(node, "gpu_virtualization_mode/virtualization_mode")
        temperature = parse_float(_text(node, "temperature/gpu_temp"))
        if virtualization == "VGPU" and not temperature:
            temperature = None  # vGPU guests print "0 C": the host owns the sensor
        gpus.append(
            GpuInfo(
                index=position,
                name=name,
                vendor="nvidia",
                backend="cuda",
                source="nvidia-smi",
                uuid=_text(node, "uuid"),
                memory_total_bytes=parse_bytes(_text(node, "fb_memory_usage/total"), "mib"),
                memory_free_bytes=parse_bytes(_text(node, "fb_memory_usage/free"), "mib"),
                driver_version=driver,
                cuda_version=cuda,
                sm_clock_max_mhz=_positive(parse_float(_text(node, "max_clocks/sm_clock"))),
                memory_clock_max_mhz=_positive(parse_float(_text(node, "max_clocks/mem_clock"))),
                power_limit_w=parse_float(
                    _text(
                        node,
                        "gpu_power_readings/current_power_limit",
                        "gpu_power_readings/enforced_power_limit",
                        "power_readings/enforced_power_limit",
                        "power_readings/power_limit",
                    )
                ),
                temperature_c=temperature,
                utilization_pct=parse_float(_text(node, "utilization/gpu_util")),
                mig_mode=_text(node, "mig_mode/current_mig"),
                virtualization_mode=virtualization,
                pci_bus_id=_text(node, "pci/pci_bus_id") or clean(node.get("id")),
                **describe_nvidia_gpu(name, None, _text(node, "product_architecture")),
            )
        )
    return gpus


def _positive(value: float | None) -> float | None:
    """None for the zero clocks that vGPU guests report instead of a placeholder."""
    return value if value else None


def _csv_column(row: dict[str, str], name: str) -> str | None:
    """Value of a ``--query-gpu`` column whether or not the header carries a unit (``memory.total [MiB]``)."""
    for key, value in row.items():
        if key is not None and key.split(" [", 1)[0].strip() == name:
            return clean(value.strip("[] ") if value and value.strip().startswith("[") else value)
    return None


def parse_nvidia_smi_csv(text: str) -> list[GpuInfo]:
    """Parse the output of ``nvidia-smi --query-gpu=<fields> --format=csv`` (with or without units).

    Unlike the XML, the CSV carries ``compute_cap`` (drivers from 510 on), which wins over the
    product-name table.

    Args:
        text: CSV text with its header line.

    Returns:
        One :class:`GpuInfo` per data row.
    """
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    if reader.fieldnames:
        reader.fieldnames = [f.strip() for f in reader.fieldnames]
    gpus: list[GpuInfo] = []
    for position, raw in enumerate(reader):
        row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        name = _csv_column(row, "name") or "unknown"
        index_text = _csv_column(row, "index")
        gpus.append(
            GpuInfo(
                index=int(index_text) if index_text and index_text.isdigit() else position,
                name=name,
                vendor="nvidia",
                backend="cuda",
                source="nvidia-smi",
                uuid=_csv_column(row, "uuid"),
                memory_total_bytes=parse_bytes(_csv_column(row, "memory.total"), "mib"),
                memory_free_bytes=parse_bytes(_csv_column(row, "memory.free"), "mib"),
                driver_version=_csv_column(row, "driver_version"),
                sm_clock_max_mhz=_positive(parse_float(_csv_column(row, "clocks.max.sm"))),
                memory_clock_max_mhz=_positive(parse_float(_csv_column(row, "clocks.max.memory"))),
                power_limit_w=parse_float(_csv_column(row, "enforced.power.limit") or _csv_column(row, "power.limit")),
                temperature_c=parse_float(_csv_column(row, "temperature.gpu")),
                utilization_pct=parse_float(_csv_column(row, "utilization.gpu")),
                mig_mode=_csv_column(row, "mig.mode.current"),
                virtualization_mode=_csv_column(row, "virtualization_mode"),
                pci_bus_id=_csv_column(row, "pci.bus_id"),
                **describe_nvidia_gpu(name, _csv_column(row, "compute_cap")),
            )
        )
    return gpus


Runner = Callable[..., Any]


def run_nvidia_smi_xml(timeout_s: float = NVIDIA_SMI_TIMEOUT_S, runner: Runner = subprocess.run) -> str:
    """Run ``nvidia-smi -q -x`` and return its XML.

    Args:
        timeout_s: Wall-clock limit.
        runner: ``subprocess.run`` (replaceable in tests).

    Returns:
        The XML text.

    Raises:
        FileNotFoundError: nvidia-smi is not on PATH.
        RuntimeError: It failed or timed out.
    """
    exe = shutil.which("nvidia-smi")
    if exe is None:
        raise FileNotFoundError("nvidia-smi is not on PATH")
    try:
        proc = runner([exe, "-q", "-x"], capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"nvidia-smi did not answer within {timeout_s:g} s") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip().splitlines()
        raise RuntimeError(f"nvidia-smi exited with {proc.returncode}: {detail[0] if detail else 'no output'}")
    return proc.stdout
