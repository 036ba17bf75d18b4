"""django-filter filter set for agents."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from agents.models import Agent
from core.filters import UTCDateTimeFilter


class AgentFilter(django_filters.FilterSet):
    """Filters: ``status``, ``activity``, ``label`` (agents carrying it), ``updated_after``."""

    label = django_filters.CharFilter(method="filter_label")
    updated_after = UTCDateTimeFilter(field_name="updated_at", lookup_expr="gt")

    class Meta:
        model = Agent
        fields = ["status", "activity", "mode", "label", "updated_after"]

    def filter_label(self, queryset: QuerySet[Agent], name: str, value: str) -> QuerySet[Agent]:
        """Keep agents whose labels contain ``value`` (done in Python: JSON containment differs on SQLite)."""
        ids = [a.pk for a in queryset if value in (a.labels or [])]
        return queryset.filter(pk__in=ids)
