"""Durable job spool under ``<data_dir>/spool``: job specs, finished runs and results survive a crash.

Layout (one directory per job)::

    spool/<job_id>/spec.json         the JobRequest, written before the job is accepted
    spool/<job_id>/run-0001.json     every finished run (SingleRunResult), written as it finishes
    spool/<job_id>/point-0000.json   every finished load point of a sweep (LoadPointRun), written as it finishes
    spool/<job_id>/result.json       the MultiRunJobResult once the job ended (any terminal state)

Every file is written atomically and owner-only (:mod:`common.files`: specs carry attempt tokens), so a
reader sees either the old content or the new, never half of it. A job directory is removed once the
server has acknowledged its result. After a restart, the engine turns a job that has a spec but no result
into an ``interrupted`` result that keeps its finished runs (or load points).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

from pydantic import ValidationError

from agent_runtime.logging import get_logger
from common.files import atomic_write_bytes, fsync_dir
from common.protocol import JobRequest, LoadPointRun, MultiRunJobResult, SingleRunResult

log = get_logger(__name__)

#: Job ids that are safe as directory names (the server's ids are integers or slugs).
JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def is_safe_job_id(job_id: str) -> bool:
    """Tell whether a job id can name a spool directory.

    Args:
        job_id: Job id from a request.

    Returns:
        True for ids of letters, digits, ``.``, ``_`` and ``-`` (not starting with a dot).
    """
    return bool(JOB_ID_RE.match(job_id)) and ".." not in job_id


class Spool:
    """The job spool.

    Args:
        root: Spool directory (``agent_runtime.paths.spool_dir(data_dir)``).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def job_dir(self, job_id: str) -> Path:
        """Directory of a job.

        Raises:
            ValueError: For an id that is not safe as a directory name.
        """
        if not is_safe_job_id(job_id):
            raise ValueError(f"job_id {job_id!r} is not a safe spool name")
        return self.root / job_id

    def save_spec(self, request: JobRequest) -> None:
        """Persist a job's request (before the job is accepted)."""
        atomic_write_bytes(self.job_dir(request.job_id) / "spec.json", request.model_dump_json().encode())

    def save_run(self, job_id: str, run: SingleRunResult) -> None:
        """Persist one finished run."""
        atomic_write_bytes(self.job_dir(job_id) / f"run-{run.run_index:04d}.json", run.model_dump_json().encode())

    def save_point(self, job_id: str, point: LoadPointRun) -> None:
        """Persist one finished load point of a sweep."""
        atomic_write_bytes(self.job_dir(job_id) / f"point-{point.index:04d}.json", point.model_dump_json().encode())

    def load_points(self, job_id: str) -> list[LoadPointRun]:
        """Read a sweep's finished load points in order (unreadable files are skipped and logged)."""
        points = []
        for path in sorted(self.job_dir(job_id).glob("point-*.json")):
            try:
                points.append(LoadPointRun.model_validate_json(path.read_bytes()))
            except ValidationError as exc:
                log.error("spool.point.unreadable", path=str(path), error=str(exc))
        return points

    def save_result(self, result: MultiRunJobResult) -> None:
        """Persist a job's final result."""
        atomic_write_bytes(self.job_dir(result.job_id) / "result.json", result.model_dump_json().encode())

    def load_spec(self, job_id: str) -> JobRequest | None:
        """Read a job's request, or None."""
        path = self.job_dir(job_id) / "spec.json"
        return JobRequest.model_validate_json(path.read_bytes()) if path.is_file() else None

    def load_runs(self, job_id: str) -> list[SingleRunResult]:
        """Read a job's finished runs in run order (unreadable files are skipped and logged)."""
        runs = []
        for path in sorted(self.job_dir(job_id).glob("run-*.json")):
            try:
                runs.append(SingleRunResult.model_validate_json(path.read_bytes()))
            except ValidationError as exc:
                log.error("spool.run.unreadable", path=str(path), error=str(exc))
        return runs

    def load_result(self, job_id: str) -> MultiRunJobResult | None:
        """Read a job's final result, or None."""
        path = self.job_dir(job_id) / "result.json"
        return MultiRunJobResult.model_validate_json(path.read_bytes()) if path.is_file() else None

    def job_ids(self) -> list[str]:
        """Ids of every spooled job."""
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_safe_job_id(p.name))

    def pending_results(self) -> list[str]:
        """Ids of jobs whose result waits for the server's acknowledgement."""
        return [j for j in self.job_ids() if (self.root / j / "result.json").is_file()]

    def remove(self, job_id: str) -> bool:
        """Delete a job's directory (after acknowledgement or when a new attempt replaces it).

        The directory is first renamed out of the way so that a crash mid-delete never leaves a
        partial job that recovery would misread.

        Returns:
            True when something was removed.
        """
        src = self.job_dir(job_id)
        with self._lock:
            if not src.exists():
                return False
            trash = self.root / f".trash-{job_id}-{os.getpid()}-{threading.get_ident()}"
            os.replace(src, trash)
            fsync_dir(self.root)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def clean_leftovers(self) -> None:
        """Remove temporary files, half-deleted directories and job directories without a spec."""
        for p in self.root.iterdir():
            if p.name.startswith(".trash-"):
                shutil.rmtree(p, ignore_errors=True)
            elif p.is_dir():
                for tmp in p.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)
                if not (p / "spec.json").is_file():
                    log.warning("spool.job.incomplete_removed", job_dir=p.name)
                    shutil.rmtree(p, ignore_errors=True)
            elif p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)
