#!/usr/bin/env bash
# Validate the container definitions without a Docker engine: compose schema and interpolation with the
# example environment files, and a Dockerfile lint. Building and running the images needs an engine.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp docker-compose.yml "$tmp/"
mkdir -p "$tmp/env"
for f in env/*.env.example; do cp "$f" "$tmp/env/$(basename "$f" .example)"; done
if command -v docker-compose >/dev/null; then
  docker-compose -f "$tmp/docker-compose.yml" config -q
  docker-compose -f "$tmp/docker-compose.yml" --profile gpu config --services | sort | tr '\n' ' '
  echo
elif docker compose version >/dev/null 2>&1; then
  docker compose -f "$tmp/docker-compose.yml" config -q
else
  echo "neither docker-compose nor the compose plugin is installed" >&2
  exit 1
fi
HADOLINT=${HADOLINT:-hadolint}
# Relative paths are given from the repository root; the script runs in docker/.
case "$HADOLINT" in /*) ;; */*) HADOLINT="../$HADOLINT" ;; esac
"$HADOLINT" --config .hadolint.yaml --failure-threshold info server.Dockerfile agent-cpu.Dockerfile agent-cuda.Dockerfile
echo "compose file and Dockerfiles are valid"
