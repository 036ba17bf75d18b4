"""Admission of a job: is it well formed, known to the catalogue, and runnable on this agent?

Used by the API (a push agent's ``POST /jobs``) and by the pull loop (a job received in a work answer), so both
modes refuse the same jobs with the same field-naming messages. The agent's policy is applied here first: a key
variable, an endpoint or a file the operator did not allow is refused before the job is accepted (and again where
it is used). A load job is also refused when its runtime cannot run its sweep (``load``, ``load.request_rate``) or
its prompt file lies where the operator allows none (``load.prompts.path``).
"""

from __future__ import annotations

from pathlib import Path

from agent_runtime.load.sweep import check_load
from agent_runtime.policy import AgentPolicy
from agent_runtime.runtimes import RUNTIME_REGISTRY, make_runtime
from agent_runtime.spool import is_safe_job_id
from agent_runtime.tasks import TASK_REGISTRY, make_task
from common.catalog import RUNTIMES, TASKS, validate_model_name, validation_errors
from common.protocol import AgentInfo, JobRequest


def check_job_request(
    job: JobRequest,
    info: AgentInfo | None,
    *,
    data_dir: Path,
    model_dirs: tuple[Path, ...],
    policy: AgentPolicy | None = None,
) -> dict[str, str]:
    """Validate a job against the catalogue, this agent's abilities and what its operator allows.

    Args:
        job: The parsed request.
        info: The agent's current description (runtime availability).
        data_dir: The agent's data directory.
        model_dirs: Extra model directories.
        policy: What the operator allows (default: nothing beyond the agent's own directories).

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
    policy = policy or AgentPolicy.strict(data_dir, model_dirs)
    task = make_task(job.task.name, job.task.params, data_dir=data_dir, paths=policy.paths)
    errors.update(task.check())
    runtime = make_runtime(job, data_dir=data_dir, model_dirs=model_dirs, policy=policy)
    errors.update(runtime.check())
    if job.load is not None:
        # A sweep the runtime cannot make, or a prompt file where the operator allows none, is refused now.
        errors.update(check_load(job, runtime, policy))
    return errors
