"""Answers to ``OPTIONS``: DRF's description of a view, also for views that have no serializer."""

from __future__ import annotations

from typing import Any

from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request


class Metadata(SimpleMetadata):
    """DRF's ``SimpleMetadata``; a view without a serializer (the agents' callbacks) describes no actions.

    DRF describes the body of each writing method from ``view.get_serializer()``, which asserts that the view has a
    serializer: an ``OPTIONS`` request to such a view was a server error.
    """

    def determine_actions(self, request: Request, view: Any) -> dict[str, Any]:
        """The writing methods' fields, or nothing when the view has no serializer to describe them."""
        try:
            view.get_serializer_class()
        except AssertionError:  # DRF's way of saying that the view has no serializer_class
            return {}
        return super().determine_actions(request, view)
