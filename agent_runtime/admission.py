"""Admission of a job: is it well formed, known to the catalogue, and runnable on this agent?

Used by the API (a push agent's ``POST /jobs``) and by the pull loop (a job received in a work answer), so both
modes refuse the same jobs with the same field-naming messages.
"""

from __future__ import annotations

from pathlib import Path

from agent_runtime.runtimes import RUNTIME_REGISTRY, make_runtime
from agent_runtime.spool import is_safe_job_id
from agent_runtime.tasks import TASK_REGISTRY
from common.catalog import RUNTIMES, TASKS, validate_model_name, validation_errors
from common.protocol import AgentInfo, JobRequest


def check_job_request(
    job: JobRequest, info: AgentInfo | None, *, data_dir: Path, model_dirs: tuple[Path, ...]
) -> dict[str, str]:
    """Validate a job against the catalogue and this agent's abilities.

    Args:
        job: The parsed request.
        info: The agent's current description (runtime availability).
        data_dir: The agent's data directory.
        model_dirs: Extra model directories.

    Returns:
        ``{dotted.field: problem}``; empty when the job can run here.
    """
    errors: dict[str, str] = {}
    if not is_safe_job_id(job.job_id):
        errors["job_id"] = "use letters, digits, '.', '_' and '-' only (at most 64 characters)"
    if job.task.name not in TASKS:
        errors["task.name"] = f"unknown task; known: {', '.join(sorted(TASKS))}"
    elif job.task.name not in TASK_REGISTRY:
        errors["task.name"] = "this agent does not implement the task"
    else:
        errors.update(validation_errors(TASKS[job.task.name].params_model, job.task.params, "task.params"))
    if job.runtime.name not in RUNTIMES:
        errors["runtime.name"] = f"unknown runtime; known: {', '.join(sorted(RUNTIMES))}"
    elif job.runtime.name not in RUNTIME_REGISTRY:
        errors["runtime.name"] = "this agent does not implement the runtime"
    else:
        errors.update(validation_errors(RUNTIMES[job.runtime.name].params_model, job.runtime.params, "runtime.params"))
        cap = next((r for r in (info.runtimes if info else []) if r.name == job.runtime.name), None)
        if cap is not None and not cap.available:
            errors["runtime.name"] = f"runtime unavailable on this agent: {cap.reason}"
    problem = validate_model_name(job.model.name, job.runtime.name) if not job.model.path else None
    if problem:
        errors["model.name"] = problem
    if errors:
        return errors
    runtime = make_runtime(job, data_dir=data_dir, model_dirs=model_dirs)
    return runtime.check()
