"""RUCKUS common package: the Agent Protocol shared by the server and the agent.

This package is pure Python (Pydantic v2 only). It must never import Django or FastAPI so that
``pip install ruckus[agent]`` stays light and both sides agree on one definition of every message.
Nothing is imported here, so that a light module (``common.statuses`` for the CLI) costs only itself.
"""
