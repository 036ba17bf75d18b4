"""RUCKUS common package: the Agent Protocol shared by the server and the agent.

This package is pure Python (Pydantic v2 only). It must never import Django or FastAPI so that
``pip install ruckus[agent]`` stays light and both sides agree on one definition of every message.
"""

from common.protocol import PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION"]
