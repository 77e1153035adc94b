#!/usr/bin/env bash
# One prepared GPU check, within 9 minutes on one H100/H200 (no network there): the CUDA-marked tests, training
# throughput of the 8B shape (seed recipe against medgen's default), and 8B-shaped generation throughput (vLLM
# against llama.cpp at 1 and 64 requests in flight, 128 new tokens each, end of sequence ignored).
#
#   bash bench/gpu_check.sh [OUT_DIR]          # figures as JSON in OUT_DIR (default: $OUT, else /tmp/gpu_check)
#
# What that machine lacks comes as wheels carried in .whl/ beside the checkout (bitsandbytes, trl, datasets,
# xllamacpp, and medgen's light dependencies; see /work/.library/device/README.md for fetching them); they are
# installed into /tmp/site. vLLM's CUDA wheel is larger than a call may carry: where vllm is absent the
# generation check measures llama.cpp alone and says so. Each step has its own time limit, so one that hangs
# cannot take the others' time; every step's figures are printed as it ends.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/gpu_check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PREFECT_SERVER_ANALYTICS_ENABLED=false HF_HUB_OFFLINE=1
PY=${PYTHON:-python3}

if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl ||
    echo "gpu_check: some carried wheels did not install" >&2
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"

step() {  # step NAME SECONDS COMMAND...: run with its own limit, keep its output, say how it ended
  local name=$1 limit=$2; shift 2
  echo "=== $name (limit ${limit}s)"
  local t0=$SECONDS
  timeout --signal=TERM --kill-after=15 "$limit" "$@" 2>&1 | tee "$out/$name.log"
  local code=${PIPESTATUS[0]}
  echo "=== $name: exit $code after $((SECONDS - t0)) s"
}

step cuda_tests 120 "$PY" -m pytest -q -m cuda -p no:cacheprovider -o addopts="" tests/train
step train_8b 210 "$PY" bench/bench_train.py --shape llama31-8b --rounds 1 --out "$out/train_8b.json"
step engines_8b 180 "$PY" bench/bench_engines.py --shape llama31-8b --concurrency 1,64 --max-tokens 128 \
  --out "$out/engines_8b.json"
echo "=== figures"
for f in "$out"/*.json; do [ -f "$f" ] && { echo "--- $(basename "$f")"; cat "$f"; }; done
