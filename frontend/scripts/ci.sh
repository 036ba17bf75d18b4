#!/usr/bin/env bash
# Frontend CI: dependencies, type check, unit tests, production build (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  # Headless Chromium for the browser test (tests/ui); never downloaded by npm.
  if [ "$(id -u)" = "0" ]; then apt-get install -y chromium; else sudo apt-get install -y chromium; fi
fi
npm ci --no-audit --no-fund
npm run typecheck
npm run test
npm run build
