"""Parsers of recorded GPU reports, the tensor-core tables, and a sweep of the reference corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_runtime.detection.apple import metal_support, parse_system_profiler_json
from agent_runtime.detection.nvidia_smi import parse_nvidia_smi_csv, parse_nvidia_smi_xml
from agent_runtime.detection.rocm_smi import parse_rocm_smi_json, rocm_smi_vbios
from agent_runtime.detection.tensor_cores import (
    architecture_for_cc,
    cc_for_product_name,
    tensor_cores_for_cc,
)
from agent_runtime.detection.values import clean, parse_bytes, parse_float

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "telemetry"
REFERENCE = REPO / ".." / "shared" / "reference" / "telemetry"
MIB = 2**20


def test_values_placeholders_and_units():
    assert parse_bytes("81559 MiB") == 81559 * MIB
    assert parse_bytes("16 GiB") == 16 * 2**30
    assert parse_bytes("23034", "mib") == 23034 * MIB
    assert parse_float("300.00 W") == 300.0
    assert parse_float("(1402Mhz)") == 1402.0
    assert parse_float("-5 C") == -5.0
    for placeholder in ("N/A", "[N/A]", "[Not Supported]", "Not Found", "N/A (Secondary die)", "", "  "):
        assert clean(placeholder) is None, placeholder
        assert parse_float(placeholder) is None
    assert clean("Requested functionality has been deprecated") is None
    assert clean(" Enabled ") == "Enabled"


def test_nvidia_xml_two_h100_one_with_mig():
    gpus = parse_nvidia_smi_xml((FIXTURES / "nvidia-smi-2x-h100-mig-v12.xml").read_bytes())
    assert [g.index for g in gpus] == [0, 1]
    first, second = gpus
    assert first.name == second.name == "NVIDIA H100 80GB HBM3"
    assert first.memory_total_bytes == 81559 * MIB
    assert first.memory_free_bytes == 81229 * MIB
    assert first.compute_capability == "9.0"
    assert first.architecture == "Hopper"
    assert first.tensor_core_generation == 4
    assert "fp8" in first.tensor_core_precisions and "fp64" in first.tensor_core_precisions
    assert first.driver_version == "550.127.05"
    assert first.cuda_version == "12.4"
    assert first.power_limit_w == 700.0
    assert first.sm_clock_max_mhz == 1980.0 and first.memory_clock_max_mhz == 2619.0
    assert first.utilization_pct == 3.0 and first.temperature_c == 31.0
    assert first.mig_mode == "Disabled"
    assert first.uuid == "GPU-11111111-2222-3333-4444-555555555555"
    assert first.pci_bus_id == "00000000:1B:00.0"
    assert first.source == "nvidia-smi" and first.vendor == "nvidia" and first.backend == "cuda"
    # MIG: one entry for the physical GPU with its full memory; utilization is not reported under MIG.
    assert second.mig_mode == "Enabled"
    assert second.memory_total_bytes == 81559 * MIB
    assert second.utilization_pct is None
    assert second.power_limit_w == 650.0


def test_nvidia_xml_old_schema_v100():
    (gpu,) = parse_nvidia_smi_xml((FIXTURES / "nvidia-smi-tesla-v100-v10.xml").read_text())
    assert gpu.name == "Tesla V100-SXM2-16GB"
    assert gpu.compute_capability == "7.0"  # from the product-name table: no CC in the XML
    assert gpu.architecture == "Volta"  # no <product_architecture> before v11: from the CC
    assert gpu.tensor_core_generation == 1 and gpu.tensor_core_precisions == ["fp16"]
    assert gpu.power_limit_w == 300.0  # power_readings/enforced_power_limit
    assert gpu.mig_mode is None
    assert gpu.virtualization_mode == "Pass-Through"
    assert gpu.driver_version == "418.67" and gpu.cuda_version == "10.1"


def test_nvidia_xml_windows_placeholders():
    (gpu,) = parse_nvidia_smi_xml((FIXTURES / "nvidia-smi-windows-placeholder-name.xml").read_text())
    assert gpu.name == "Graphics Device"
    assert gpu.compute_capability is None and gpu.tensor_core_generation is None
    assert gpu.cuda_version is None  # "Not Found"
    assert gpu.utilization_pct is None and gpu.power_limit_w is None and gpu.temperature_c is None
    assert gpu.memory_total_bytes == 6144 * MIB
    assert gpu.index == 0  # minor_number is N/A on Windows


def test_nvidia_xml_rejects_other_documents():
    with pytest.raises(ValueError):
        parse_nvidia_smi_xml("<html></html>")
    with pytest.raises(ValueError):
        parse_nvidia_smi_xml("not xml at all")


def test_nvidia_csv_l4_pair():
    gpus = parse_nvidia_smi_csv((FIXTURES / "nvidia-smi-query-gpu-l4.csv").read_text())
    assert [g.index for g in gpus] == [0, 1]
    gpu = gpus[0]
    assert gpu.name == "NVIDIA L4"
    assert gpu.compute_capability == "8.9" and gpu.architecture == "Ada Lovelace"
    assert gpu.tensor_core_generation == 4 and "fp8" in gpu.tensor_core_precisions
    assert gpu.memory_total_bytes == 23034 * MIB and gpu.memory_free_bytes == 22700 * MIB
    assert gpu.power_limit_w == 72.0 and gpu.utilization_pct == 12.0 and gpu.temperature_c == 45.0
    assert gpu.mig_mode is None  # "[N/A]"
    assert gpu.driver_version == "560.35.03"


def test_rocm_smi_two_mi210():
    gpus = parse_rocm_smi_json((FIXTURES / "rocm-smi-2x-mi210.json").read_text())
    assert len(gpus) == 2
    first, second = gpus
    assert first.name == "Aldebaran/MI200 [Instinct MI210]"
    assert first.vendor == "amd" and first.backend == "rocm" and first.source == "rocm-smi"
    assert first.memory_total_bytes == 68702699520
    assert first.memory_free_bytes == 68702699520 - 10878976
    assert first.architecture == "gfx90a"
    assert first.power_limit_w == 300.0 and first.temperature_c == 41.0 and first.utilization_pct == 7.0
    assert first.driver_version == "6.7.0" and first.pci_bus_id == "0000:C1:00.0"
    assert second.index == 1 and second.uuid is None and second.power_limit_w is None
    assert second.memory_free_bytes == 0
    assert rocm_smi_vbios((FIXTURES / "rocm-smi-2x-mi210.json").read_text()) == {
        0: "113-D67301-063",
        1: "113-D67301-063",
    }


def test_apple_system_profiler():
    raw = (FIXTURES / "system-profiler-m2-pro.json").read_text()
    (gpu,) = parse_system_profiler_json(raw, unified_memory_bytes=32 * 2**30)
    assert gpu.name == "Apple M2 Pro (19-core GPU)"
    assert gpu.vendor == "apple" and gpu.backend == "mps"
    assert gpu.memory_total_bytes == 32 * 2**30
    assert metal_support(json.loads(raw)["SPDisplaysDataType"][0]) == "Metal 3"
    (recorded,) = parse_system_profiler_json(raw)
    assert recorded.memory_total_bytes is None  # a report's host memory is not guessed


@pytest.mark.parametrize(
    ("cc", "generation", "arch"),
    [
        ("6.1", None, "Pascal"),
        ("3.7", None, "Kepler"),
        ("7.0", 1, "Volta"),
        ("7.2", 1, "Volta"),
        ("7.5", 2, "Turing"),
        ("8.0", 3, "Ampere"),
        ("8.6", 3, "Ampere"),
        ("8.7", 3, "Ampere"),
        ("8.9", 4, "Ada Lovelace"),
        ("9.0", 4, "Hopper"),
        ("10.0", 5, "Blackwell"),
        ("12.0", 5, "Blackwell"),
    ],
)
def test_tensor_core_generations(cc, generation, arch):
    cores = tensor_cores_for_cc(cc)
    assert (cores.generation if cores else None) == generation
    assert architecture_for_cc(cc) == arch


def test_tensor_core_precisions():
    assert tensor_cores_for_cc("7.5").precisions == ("fp16", "int8", "int4")
    assert "fp64" in tensor_cores_for_cc("8.0").precisions
    assert "fp64" not in tensor_cores_for_cc("8.6").precisions
    assert "fp8" not in tensor_cores_for_cc("8.6").precisions
    assert "fp8" in tensor_cores_for_cc("8.9").precisions
    assert "int4" not in tensor_cores_for_cc("9.0").precisions
    assert {"fp4", "fp6"} <= set(tensor_cores_for_cc("12.0").precisions)
    assert tensor_cores_for_cc("not a cc") is None


@pytest.mark.parametrize(
    ("name", "cc"),
    [
        ("Tesla K80", "3.7"),
        ("Tesla P4", "6.1"),
        ("GRID P4-1Q", "6.1"),
        ("Tesla P40", "6.1"),
        ("Tesla P100-PCIE-16GB", "6.0"),
        ("NVIDIA GeForce GTX 1080 Ti", "6.1"),
        ("Quadro P2000", "6.1"),
        ("Tesla V100-SXM3-32GB", "7.0"),
        ("Tesla T4", "7.5"),
        ("NVIDIA GeForce RTX 2080 SUPER", "7.5"),
        ("NVIDIA GeForce GTX 1660 Ti", "7.5"),
        ("Quadro RTX 4000", "7.5"),
        ("NVIDIA A100-SXM4-80GB", "8.0"),
        ("NVIDIA A30", "8.0"),
        ("NVIDIA A10G", "8.6"),
        ("NVIDIA A10", "8.6"),
        ("NVIDIA A40", "8.6"),
        ("NVIDIA GeForce RTX 3090", "8.6"),
        ("NVIDIA RTX A5000", "8.6"),
        ("NVIDIA L4", "8.9"),
        ("NVIDIA L40S", "8.9"),
        ("NVIDIA GeForce RTX 4090", "8.9"),
        ("NVIDIA RTX 6000 Ada Generation", "8.9"),
        ("NVIDIA RTX 5000 Ada Generation", "8.9"),
        ("NVIDIA H100 80GB HBM3", "9.0"),
        ("NVIDIA H200", "9.0"),
        ("NVIDIA GH200 480GB", "9.0"),
        ("NVIDIA B200", "10.0"),
        ("NVIDIA GB200", "10.0"),
        ("NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "12.0"),
        ("NVIDIA GeForce RTX 5090", "12.0"),
        ("Graphics Device", None),
        ("", None),
    ],
)
def test_product_name_table(name, cc):
    assert cc_for_product_name(name) == cc


# --------------------------------------------------------------------------------------------------
# Reference corpus: real outputs of many machines, when the shared reference folder is present.
# --------------------------------------------------------------------------------------------------


def _corpus(subdir: str, pattern: str) -> list[Path]:
    folder = REFERENCE / subdir
    if not folder.is_dir():
        pytest.skip(f"reference corpus not present at {folder}")
    files = sorted(folder.glob(pattern))
    if not files:
        pytest.skip(f"no {pattern} under {folder}")
    return files


def test_corpus_nvidia_smi_xml():
    total = 0
    for path in _corpus("nvidia-smi-xml", "*.xml"):
        gpus = parse_nvidia_smi_xml(path.read_bytes())
        assert gpus, path.name
        for gpu in gpus:
            total += 1
            assert gpu.name and gpu.name != "unknown", path.name
            assert gpu.memory_total_bytes and gpu.memory_total_bytes > 512 * MIB, path.name
            assert gpu.driver_version, path.name
            assert gpu.uuid and gpu.uuid.startswith("GPU-"), path.name
            if gpu.name != "Graphics Device":  # the one placeholder name an old driver printed
                assert gpu.compute_capability, path.name
                assert gpu.architecture, path.name
    assert total >= 14


def test_corpus_nvidia_smi_xml_specifics():
    files = {p.name: p for p in _corpus("nvidia-smi-xml", "*.xml")}

    def gpus(prefix: str):
        name = next(n for n in files if n.startswith(prefix))
        return parse_nvidia_smi_xml(files[name].read_bytes())

    k80 = gpus("4x-tesla-k80")
    assert len(k80) == 4 and all(g.compute_capability == "3.7" for g in k80)
    assert all(g.tensor_core_generation is None for g in k80)
    assert k80[0].cuda_version is None  # "Not Found"
    (a100,) = gpus("a100-sxm4-80gb-mig")
    assert a100.mig_mode == "Enabled" and a100.memory_total_bytes == 81920 * MIB and a100.power_limit_w == 500.0
    assert len(gpus("2x-rtx-a5000")) == 2
    (blackwell,) = gpus("rtx-pro-6000-blackwell")
    assert blackwell.tensor_core_generation == 5 and blackwell.compute_capability == "12.0"
    (vgpu,) = gpus("grid-p4-1q-vgpu")
    assert vgpu.virtualization_mode == "VGPU" and vgpu.compute_capability == "6.1"
    assert vgpu.temperature_c is None and vgpu.sm_clock_max_mhz is None
    (t4,) = gpus("tesla-t4")
    assert (t4.compute_capability, t4.tensor_core_generation, t4.power_limit_w) == ("7.5", 2, 70.0)


def test_corpus_nvidia_smi_csv_matches_name_table():
    for path in _corpus("nvidia-smi-csv", "*.csv"):
        (gpu,) = parse_nvidia_smi_csv(path.read_text())
        assert gpu.memory_total_bytes and gpu.memory_total_bytes > 0, path.name
        assert gpu.compute_capability, path.name
        # The CSV reports the CC itself: the product-name table must agree with the driver.
        assert cc_for_product_name(gpu.name) == gpu.compute_capability, (path.name, gpu.name)


def test_corpus_rocm_smi():
    for path in _corpus("rocm-smi-json", "*.json"):
        gpus = parse_rocm_smi_json(path.read_text())
        assert gpus, path.name
        for gpu in gpus:
            assert gpu.name and gpu.name != "AMD GPU", path.name
            assert gpu.memory_total_bytes and gpu.memory_total_bytes > 2**30, path.name


def test_corpus_apple_system_profiler():
    for path in _corpus("apple-system-profiler", "*.json"):
        gpus = parse_system_profiler_json(path.read_text(), unified_memory_bytes=8 * 2**30)
        assert gpus, path.name
        assert all(g.name.startswith("Apple ") and g.memory_total_bytes == 8 * 2**30 for g in gpus)
        assert any("-core GPU" in g.name for g in gpus)
