# RUCKUS server image: API + websockets (daphne), scheduler (same image, other command), built UI.
# Stage 1 builds the React UI; stage 2 installs the Python server without the ML stack.

FROM node:20-bookworm-slim AS ui
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm AS server
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    RUCKUS_DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles
RUN groupadd --system --gid 10001 ruckus && useradd --system --uid 10001 --gid ruckus --home-dir /app --shell /usr/sbin/nologin ruckus
WORKDIR /app
COPY pyproject.toml README.md manage.py ./
COPY common/ common/
COPY agent_runtime/ agent_runtime/
COPY ruckus_server/ ruckus_server/
COPY ruckus_cli/ ruckus_cli/
COPY agents/ agents/
COPY experiments/ experiments/
COPY results/ results/
RUN pip install ".[server,cli]"
COPY --from=ui /src/frontend/dist/ frontend/dist/
# collectstatic needs settings but no database; a throwaway key is enough at build time.
RUN SECRET_KEY=build-only DEBUG=0 python manage.py collectstatic --noinput \
    && mkdir -p /data && chown -R ruckus:ruckus /data /app/staticfiles
USER 10001
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
# HTTP and websockets; several worker processes share the port (docs/deployment.md, "Fleet scale").
CMD ["uvicorn", "ruckus_server.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--no-access-log"]
