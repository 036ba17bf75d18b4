"""django-filter filter sets for experiments and jobs (the polling queries)."""

from __future__ import annotations

import django_filters

from core.filters import UTCDateTimeFilter
from experiments.models import Experiment, ExperimentStatus, Job, JobStatus


class _CharInFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """Comma-separated list of values (``status=pending,running``)."""


class JobFilter(django_filters.FilterSet):
    """Filters: ``experiment``, ``status`` (comma list), ``agent``, ``updated_after``, model/runtime names."""

    status = _CharInFilter(field_name="status", help_text=f"One or more of: {', '.join(JobStatus)}")
    updated_after = UTCDateTimeFilter(field_name="updated_at", lookup_expr="gt")
    model = django_filters.CharFilter(field_name="model_name")
    runtime = django_filters.CharFilter(field_name="runtime_name")

    class Meta:
        model = Job
        fields = ["experiment", "agent", "status", "updated_after", "model", "runtime"]


class ExperimentFilter(django_filters.FilterSet):
    """Filters: ``status`` (comma list), ``updated_after``, ``owner`` (username)."""

    status = _CharInFilter(field_name="status", help_text=f"One or more of: {', '.join(ExperimentStatus)}")
    updated_after = UTCDateTimeFilter(field_name="updated_at", lookup_expr="gt")
    owner = django_filters.CharFilter(field_name="owner__username")

    class Meta:
        model = Experiment
        fields = ["status", "updated_after", "owner"]
