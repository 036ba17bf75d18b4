"""Shared pytest configuration (Django test settings live in ``tests/settings.py``)."""
