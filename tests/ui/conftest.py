"""Browser tests reuse the multi-process fixtures of the end-to-end tests."""

from tests.e2e.conftest import stack, user_api  # noqa: F401
