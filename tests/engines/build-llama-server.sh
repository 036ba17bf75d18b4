#!/usr/bin/env bash
# Build llama.cpp's own server, llama-server, into BIN_DIR (default .venv/bin).
#
# The llamacpp_server runtime's tests need a server with Prometheus /metrics, which `python -m llama_cpp.server`
# lacks. The sources are the llama.cpp tree vendored in the sdist of the installed llama-cpp-python (from PyPI,
# the only download; pip's cache usually holds it already), so the server and the in-process runtime are the same
# llama.cpp. CPU build; the embedded web UI is left out (it would need npm or a download).
# Re-running with the same version only relinks. Build directory: LLAMA_SERVER_BUILD_DIR (default data/llama-server).
set -euo pipefail
BIN_DIR="${1:-.venv/bin}"
PY="${BIN_DIR}/python"
WORK="${LLAMA_SERVER_BUILD_DIR:-data/llama-server}"
VERSION="$("$PY" -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))')"
SRC="${WORK}/llama_cpp_python-${VERSION}"
mkdir -p "$WORK"
if [ ! -f "${SRC}/vendor/llama.cpp/CMakeLists.txt" ]; then
  "$PY" -m pip download --quiet --no-deps --no-binary :all: --dest "$WORK" "llama-cpp-python==${VERSION}"
  tar -xzf "${WORK}/llama_cpp_python-${VERSION}.tar.gz" -C "$WORK"
fi
# The logs stay quiet unless a step fails.
run() { local log="$1"; shift; "$@" > "$log" 2>&1 || { tail -n 40 "$log" >&2; echo "failed: see $log" >&2; exit 1; }; }
run "${WORK}/cmake-configure.log" cmake -S "${SRC}/vendor/llama.cpp" -B "${WORK}/build-${VERSION}" \
  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  ${LLAMA_CMAKE_ARGS:-}
run "${WORK}/cmake-build.log" cmake --build "${WORK}/build-${VERSION}" --target llama-server -j "$(nproc)"
install -m 755 "${WORK}/build-${VERSION}/bin/llama-server" "${BIN_DIR}/llama-server"
echo "llama-server ${VERSION} -> ${BIN_DIR}/llama-server"
