"""REST serializers for experiments and jobs; input validation uses the common catalogue's schemas."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Count
from django.db.models.manager import BaseManager
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from rest_framework import serializers

from agents.models import Agent
from common.catalog import (
    NO_MODEL_NAME,
    RUNTIMES,
    TASKS,
    parse_params,
    runtime_task_problem,
    validate_model_name,
)
from common.metrics import is_known_metric
from common.protocol import (
    MAX_RUNS_PER_JOB,
    MIN_RUNS_PER_JOB,
    AccessMode,
    JobProgress,
    LoadSpec,
    ModelSpec,
    RuntimeSpec,
)
from core.api_schemas import ModelJSONField
from core.models import StateTransition
from core.parsers import StorableJSONValidator
from core.roles import may_manage
from experiments.models import Experiment, Job, JobAttempt


class TaskInputSerializer(serializers.Serializer):
    """``{"name": ..., "params": {...}}`` of a task."""

    name = serializers.CharField(max_length=100)
    params = serializers.DictField(required=False, default=dict, validators=[StorableJSONValidator()])

    def validate_name(self, value: str) -> str:
        """Refuse tasks the catalogue does not know."""
        if value not in TASKS:
            raise serializers.ValidationError(f"unknown task {value!r}; known tasks: {', '.join(sorted(TASKS))}")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Validate the params against the task's schema once, naming each bad parameter.

        The params are stored normalized (every default the agents will use filled in).
        """
        if "name" not in attrs:  # a partial update (PATCH) does not require it: name it here instead of failing
            raise serializers.ValidationError({"name": ["This field is required."]})
        params, errors = parse_params(TASKS[attrs["name"]].params_model, attrs.get("params") or {})
        if params is None:
            raise serializers.ValidationError({"params": errors})
        return {**attrs, "params": params}


class RuntimeInputSerializer(serializers.Serializer):
    """``{"name": ..., "params": {...}}`` of a runtime."""

    name = serializers.CharField(max_length=100)
    params = serializers.DictField(required=False, default=dict, validators=[StorableJSONValidator()])

    def validate_name(self, value: str) -> str:
        """Refuse runtimes the catalogue does not know."""
        if value not in RUNTIMES:
            raise serializers.ValidationError(
                f"unknown runtime {value!r}; known runtimes: {', '.join(sorted(RUNTIMES))}"
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Validate the params against the runtime's schema, naming each bad parameter."""
        if "name" not in attrs:  # a partial update (PATCH) does not require it: name it here instead of failing
            raise serializers.ValidationError({"name": ["This field is required."]})
        _, errors = parse_params(RUNTIMES[attrs["name"]].params_model, attrs.get("params") or {})
        if errors:
            raise serializers.ValidationError({"params": errors})
        return attrs


class ModelInputSerializer(serializers.Serializer):
    """A model spec: catalogue name or Hugging Face repo id, optional dtype/revision/path."""

    name = serializers.CharField(max_length=200)
    dtype = serializers.ChoiceField(
        choices=["auto", "float32", "float16", "bfloat16"], required=False, allow_null=True
    )
    revision = serializers.CharField(max_length=100, required=False, allow_null=True)
    path = serializers.CharField(max_length=1000, required=False, allow_null=True)


class AgentSelectionSerializer(serializers.Serializer):
    """Exactly one of ``{"all": true}``, ``{"ids": [...]}``, ``{"labels": [...]}``."""

    all = serializers.BooleanField(required=False)
    ids = serializers.ListField(child=serializers.UUIDField(), required=False, allow_empty=False, max_length=1000)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, allow_empty=False, max_length=50
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Check that exactly one way of selecting agents is used and that listed ids exist."""
        chosen = [k for k in ("all", "ids", "labels") if attrs.get(k)]
        if len(chosen) != 1:
            raise serializers.ValidationError(
                'give exactly one of {"all": true}, {"ids": [...]} or {"labels": [...]}'
            )
        if "ids" in chosen:
            ids = [str(i) for i in attrs["ids"]]
            found = {str(pk) for pk in Agent.objects.filter(pk__in=ids).values_list("pk", flat=True)}
            missing = [i for i in ids if i not in found]
            if missing:
                raise serializers.ValidationError({"ids": f"unknown agent id(s): {', '.join(missing)}"})
            return {"ids": ids}
        return {chosen[0]: attrs[chosen[0]]}


class LoadSpecField(serializers.JSONField):
    """An experiment's load sweep: a :class:`common.protocol.LoadSpec` object, validated by the serializer."""


class LoadSpecFieldSchema(OpenApiSerializerFieldExtension):
    """A :class:`LoadSpecField` is the ``LoadSpec`` component in the schema."""

    target_class = LoadSpecField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        """Reference the ``LoadSpec`` component."""
        return auto_schema.resolve_serializer(LoadSpec, direction).ref


#: A message that starts by naming its field (``request_rate[2]: ...``, ``load.max_concurrency: ...``).
_NAMED_MESSAGE = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\])?(?:\.[A-Za-z_]\w*(?:\[\d+\])?)*): (.+)$", re.DOTALL)


def _unknown_fields(model: type[BaseModel], data: Any, path: str) -> dict[str, list[str]]:
    """Fields of ``data`` (and of its nested objects) that ``model`` does not have.

    The protocol ignores unknown fields; the API refuses them, so that a misspelt setting is not silently left at its
    default.
    """
    if not isinstance(data, dict):
        return {}
    errors: dict[str, list[str]] = {}
    for key, value in data.items():
        field = model.model_fields.get(key) if isinstance(key, str) else None
        if field is None:
            errors[f"{path}.{key}"] = ["unknown field"]
            continue
        nested = field.annotation
        for candidate in getattr(nested, "__args__", (nested,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                errors.update(_unknown_fields(candidate, value, f"{path}.{key}"))
    return errors


def load_errors(exc: PydanticValidationError) -> dict[str, list[str]]:
    """A load spec's validation errors keyed by the field's path (``load.request_rate[2]``, ``load.slo``).

    Pydantic places a list validator's error on the whole list and a model validator's on the model; their
    messages name the precise field first (``request_rate[2]: must be ...``), and that name becomes the key.

    Args:
        exc: The error of ``LoadSpec.model_validate``.

    Returns:
        Path -> messages, every path starting with ``load``.
    """
    errors: dict[str, list[str]] = {}
    for err in exc.errors():
        parts: list[str] = []
        for part in err.get("loc", ()):
            if isinstance(part, int) and parts:
                parts[-1] += f"[{part}]"
            else:
                parts.append(str(part))
        message = "unknown field" if err.get("type") == "extra_forbidden" else str(err.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        key = ".".join(["load", *parts])
        named = _NAMED_MESSAGE.match(message) if err.get("type") == "value_error" else None
        if named:
            name, rest = named.groups()
            head = re.split(r"[.\[]", name, maxsplit=1)[0]
            if head == "load":
                key, message = name, rest
            elif not parts:
                key, message = f"load.{name}", rest
            elif head == re.split(r"\[", parts[-1], maxsplit=1)[0]:
                key, message = ".".join(["load", *parts[:-1], name]), rest
        errors.setdefault(key, []).append(message)
    return errors


def validate_load(load: Any, *, task: str, runtimes: list[str]) -> dict[str, Any]:
    """Check an experiment's load sweep and return it as stored (defaults filled in).

    Args:
        load: The ``load`` object of the request.
        task: The experiment's task.
        runtimes: Its runtimes' names.

    Returns:
        The load spec's JSON.

    Raises:
        serializers.ValidationError: Keyed by each bad field's path (``load.request_rate[2]``).
    """
    if not isinstance(load, dict):
        raise serializers.ValidationError({"load": ["must be an object (a load spec)"]})
    unknown = _unknown_fields(LoadSpec, load, "load")
    if unknown:
        raise serializers.ValidationError(unknown)
    try:
        spec = LoadSpec.model_validate(load)
    except PydanticValidationError as exc:
        raise serializers.ValidationError(load_errors(exc)) from None
    if not TASKS[task].needs_model:
        raise serializers.ValidationError(
            {"load": [f"task {task!r} measures the host and generates nothing: a load sweep needs a generation task"]}
        )
    if spec.request_rate is not None:
        # A white-box runtime has no server to send requests to: it makes load as batches of a given size.
        batch_only = [name for name in runtimes if RUNTIMES[name].access_mode == AccessMode.WHITE_BOX]
        if batch_only:
            raise serializers.ValidationError(
                {"load.request_rate": [
                    f"runtime(s) {', '.join(batch_only)} run a load sweep as batches: give concurrency levels "
                    "(batch sizes), not request rates"
                ]}
            )
    return spec.model_dump(mode="json")


def current_attempt(job: Job) -> JobAttempt | None:
    """The job's current attempt, from its prefetched attempts when the query loaded them.

    ``Job.current_attempt`` asks the database each time (it filters): in a list that is one query per row, however
    the page was prefetched. A page's attempts come with it (``prefetch_related("attempts")``), so they are
    searched here instead.

    Args:
        job: The job.

    Returns:
        The attempt with the job's current number, or None.
    """
    if not job.attempt:
        return None
    prefetched = getattr(job, "_prefetched_objects_cache", {}).get("attempts")
    if prefetched is None:
        return job.current_attempt
    return next((a for a in prefetched if a.number == job.attempt), None)


def _can_manage(context: dict[str, Any], owner_id: int | None) -> bool:
    """Whether the user of the serializer's request may act on an experiment owned by ``owner_id``."""
    request = context.get("request")
    return request is not None and may_manage(request.user, owner_id)


def attach_job_counts(experiments: list[Experiment]) -> None:
    """Count the jobs per status of many experiments in one query, for :meth:`ExperimentSerializer.get_job_counts`.

    Args:
        experiments: The experiments (each gets a ``job_counts_cache`` attribute: status -> count).
    """
    counts: dict[int, dict[str, int]] = {e.pk: {} for e in experiments}
    rows = (
        Job.objects.filter(experiment_id__in=list(counts))
        .values("experiment_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["experiment_id"]][row["status"]] = row["n"]
    for experiment in experiments:
        experiment.job_counts_cache = counts[experiment.pk]


class ExperimentListSerializer(serializers.ListSerializer):
    """A page of experiments: their job counts come from one query for the whole page, not one per experiment."""

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        """Count the page's jobs at once, then show each experiment."""
        experiments = list(data.all() if isinstance(data, BaseManager) else data)
        attach_job_counts(experiments)
        return super().to_representation(experiments)


class ExperimentSerializer(serializers.ModelSerializer):
    """Experiment as the API shows it and accepts it (create validates everything; update only renames)."""

    task = TaskInputSerializer(write_only=True)
    # Optional only for tasks that measure the host (``hardware_benchmark``); ``validate`` enforces the rest.
    models = serializers.ListField(
        child=ModelInputSerializer(), source="model_specs", required=False, max_length=50
    )
    runtimes = RuntimeInputSerializer(many=True, source="runtime_specs", max_length=20)
    agents = AgentSelectionSerializer(source="agent_selection")
    runs_per_job = serializers.IntegerField(
        min_value=MIN_RUNS_PER_JOB,
        max_value=MAX_RUNS_PER_JOB,
        default=3,
        error_messages={
            "min_value": f"runs_per_job must be between {MIN_RUNS_PER_JOB} and {MAX_RUNS_PER_JOB}",
            "max_value": f"runs_per_job must be between {MIN_RUNS_PER_JOB} and {MAX_RUNS_PER_JOB}",
        },
    )
    requested_metrics = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list, max_length=100
    )
    owner = serializers.CharField(source="owner.username", read_only=True, default=None)
    can_manage = serializers.SerializerMethodField(
        help_text="Whether the requesting user may edit, cancel or delete the experiment and cancel or retry its jobs."
    )
    job_counts = serializers.SerializerMethodField()
    load = LoadSpecField(
        required=False,
        allow_null=True,
        default=None,
        help_text=(
            "A load sweep each job runs instead of sequential runs (serving under load): concurrency levels or "
            "request rates, each point sized by num_requests or duration_s. A load job is one sweep: runs_per_job "
            "is ignored for it. Only generation tasks take one; white-box runtimes sweep concurrency (batch sizes)."
        ),
    )

    class Meta:
        model = Experiment
        fields = [
            "id",
            "name",
            "description",
            "task",
            "models",
            "runtimes",
            "agents",
            "runs_per_job",
            "requested_metrics",
            "load",
            "status",
            "plan",
            "job_counts",
            "owner",
            "can_manage",
            "created_at",
            "updated_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = ["status", "plan", "created_at", "updated_at", "started_at", "finished_at"]
        extra_kwargs = {"description": {"max_length": 10_000}}
        list_serializer_class = ExperimentListSerializer

    def get_can_manage(self, obj: Experiment) -> bool:
        """Whether the requesting user may act on the experiment (False without a request, e.g. in events)."""
        return _can_manage(self.context, obj.owner_id)

    def get_job_counts(self, obj: Experiment) -> dict[str, int]:
        """Number of jobs per status."""
        # In a list, the page's counts were made in one query (ExperimentListSerializer), not one per experiment.
        cached = getattr(obj, "job_counts_cache", None)
        if cached is not None:
            return cached
        rows = obj.jobs.values("status").annotate(n=Count("id")).order_by()
        return {row["status"]: row["n"] for row in rows}

    def to_representation(self, instance: Experiment) -> dict[str, Any]:
        """Show the task as ``{"name", "params"}`` from the two model columns, right after the description."""
        data = super().to_representation(instance)
        ordered = {}
        for key, value in data.items():
            ordered[key] = value
            if key == "description":
                ordered["task"] = {"name": instance.task_name, "params": instance.task_params}
        return ordered

    def validate_runtimes(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """At least one runtime, no duplicates."""
        if not value:
            raise serializers.ValidationError("give at least one runtime")
        names = [r["name"] for r in value]
        if len(names) != len(set(names)):
            raise serializers.ValidationError("each runtime may appear once")
        return value

    def validate_requested_metrics(self, value: list[str]) -> list[str]:
        """Only known metric names."""
        unknown = [m for m in value if not is_known_metric(m)]
        if unknown:
            raise serializers.ValidationError(f"unknown metric(s): {', '.join(unknown)}")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Check models against the runtimes they will run with; refuse spec changes on update."""
        if self.instance is not None:
            frozen = {"task", "model_specs", "runtime_specs", "agent_selection", "runs_per_job",
                      "requested_metrics", "load"}
            changed = sorted(frozen & set(self.initial_data or {}) | frozen & set(attrs))
            if changed:
                api_names = {"model_specs": "models", "runtime_specs": "runtimes", "agent_selection": "agents"}
                raise serializers.ValidationError(
                    {api_names.get(f, f): "cannot change after creation; create a new experiment" for f in changed}
                )
            return attrs
        task = attrs["task"]["name"]
        runtime_names = [r["name"] for r in attrs.get("runtime_specs", [])]
        runtime_errors = {
            str(i): {"name": problem}
            for i, name in enumerate(runtime_names)
            if (problem := runtime_task_problem(task, name))
        }
        if runtime_errors:
            raise serializers.ValidationError({"runtimes": runtime_errors})
        if attrs.get("load") is not None:
            attrs["load"] = validate_load(attrs["load"], task=task, runtimes=runtime_names)
        models = attrs.get("model_specs") or []
        if not TASKS[task].needs_model:
            # The host is measured: jobs carry the placeholder model, one job per (runtime, agent).
            if any(m["name"] != NO_MODEL_NAME for m in models):
                raise serializers.ValidationError(
                    {"models": f"task {task!r} measures the host and takes no model: leave 'models' out"}
                )
            attrs["model_specs"] = [{"name": NO_MODEL_NAME}]
            return attrs
        if not models:
            raise serializers.ValidationError({"models": f"give at least one model for task {task!r}"})
        errors: dict[int, dict[str, str]] = {}
        for i, model in enumerate(models):
            for runtime in runtime_names:
                problem = validate_model_name(model["name"], runtime)
                if problem:
                    errors[i] = {"name": f"{problem} (needed by runtime {runtime!r})"}
                    break
        if errors:
            # Same shape DRF uses for nested list errors: index (as a string) -> field errors.
            raise serializers.ValidationError({"models": {str(i): e for i, e in errors.items()}})
        return attrs

    def creation_arguments(self) -> dict[str, Any]:
        """The validated input as the arguments of ``experiments.services.experiment_create``.

        Returns:
            Keyword arguments (without ``owner``).
        """
        data = self.validated_data
        return {
            "name": data["name"],
            "description": data.get("description", ""),
            "task_name": data["task"]["name"],
            "task_params": data["task"]["params"],
            "models": [{k: v for k, v in m.items() if v is not None} for m in data["model_specs"]],
            "runtimes": [{"name": r["name"], "params": r.get("params") or {}} for r in data["runtime_specs"]],
            "agents": data["agent_selection"],
            "runs_per_job": data["runs_per_job"],
            "requested_metrics": data.get("requested_metrics") or [],
            "load": data.get("load"),
        }


class AttemptSerializer(serializers.ModelSerializer):
    """One dispatch of a job (the attempt token is never shown)."""

    progress = serializers.SerializerMethodField()

    class Meta:
        model = JobAttempt
        fields = [
            "number", "agent", "status", "outcome", "progress", "lease_deadline", "created_at", "started_at",
            "finished_at",
        ]

    @extend_schema_field(ModelJSONField(JobProgress, allow_null=True))
    def get_progress(self, obj: JobAttempt) -> dict[str, Any] | None:
        """The attempt's latest progress report (null before the first)."""
        return obj.progress or None


class TransitionSerializer(serializers.ModelSerializer):
    """One entry of the transition log."""

    class Meta:
        model = StateTransition
        fields = ["entity", "from_state", "to_state", "reason", "created_at", "attempt", "agent"]



class JobSerializer(serializers.ModelSerializer):
    """A job: one (model, runtime, agent) combination of an experiment."""

    model = ModelJSONField(ModelSpec, source="model_spec")
    runtime = ModelJSONField(RuntimeSpec, source="runtime_spec")
    agent_name = serializers.CharField(source="agent.name", read_only=True, default=None, allow_null=True)
    owner = serializers.CharField(source="experiment.owner.username", read_only=True, default=None, allow_null=True,
                                  help_text="Owner of the job's experiment.")
    can_manage = serializers.SerializerMethodField(
        help_text="Whether the requesting user may cancel or retry the job (it owns the experiment, or is a fleet "
                  "admin)."
    )
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "experiment",
            "status",
            "status_reason",
            "agent",
            "agent_name",
            "attempt",
            "max_attempts",
            "model",
            "runtime",
            "model_name",
            "runtime_name",
            "hardware_fingerprint",
            "not_before",
            "cancel_requested",
            "owner",
            "can_manage",
            "progress",
            "created_at",
            "updated_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_can_manage(self, obj: Job) -> bool:
        """Whether the requesting user may act on the job (False without a request, e.g. in events)."""
        return _can_manage(self.context, obj.experiment.owner_id)

    @extend_schema_field(ModelJSONField(JobProgress, allow_null=True))
    def get_progress(self, obj: Job) -> dict[str, Any] | None:
        """Latest progress reported by the current attempt."""
        attempt = current_attempt(obj)
        return attempt.progress or None if attempt is not None else None


class JobDetailSerializer(JobSerializer):
    """A job with its attempts and transition log."""

    attempts = AttemptSerializer(many=True, read_only=True)
    transitions = TransitionSerializer(
        many=True, read_only=True, help_text="Every state change of the job and its attempts, oldest first."
    )

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "attempts", "transitions"]
        read_only_fields = fields
