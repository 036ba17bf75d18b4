"""Shared pytest configuration (Django test settings live in ``tests/settings.py``)."""

import os

# Agents started by the tests (in process or as processes, which inherit this environment) do not look for
# inference servers on the host's usual ports (vLLM 8000, llama.cpp 8080, Ollama 11434): what happens to run on the
# machine must not change what the tests see. Tests of discovery name their servers or turn probing on themselves.
os.environ.setdefault("RUCKUS_AGENT_PROBE_LOCAL_SERVERS", "false")
