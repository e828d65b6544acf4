#!/usr/bin/env bash
# The GPU benchmark on a lent H100/H200 (the device tool), unattended; prints its table last.
#
# The device machine has torch, torchvision, lightning and torchmetrics but no hydra-core,
# omegaconf or antlr4, and no network and no ../shared/data. Prepare both once, here, in the
# repository root (both folders are git-ignored):
#
#   bash benchmarks/run_gpu.sh --prepare      # wheels into .whl/, MNIST .gz files into data/
#
# then run it with the device tool:
#
#   run(command="bash benchmarks/run_gpu.sh", carry=[".whl", "data"], timeout_s=540)
#
# Files come back from $OUT: bench_gpu.md (the table), bench_gpu.json (every figure),
# bench_gpu.log (the whole output). BENCH_BUDGET_S (default 300): no optional run starts after it;
# BENCH_HARD_S (default 480): any run still going then is stopped, so the table always prints.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
  PY=${PY:-.venv/bin/python}
  mkdir -p .whl data/MNIST/raw
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
    hydra-core==1.3.8 omegaconf==2.3.1
  # antlr4-python3-runtime 4.9.3 is published as an sdist only: build its (pure-Python) wheel here.
  "$PY" -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
  src=${DEEPDEPTH_DATA:-../shared/data}/MNIST/raw
  cp "$src"/*-ubyte.gz data/MNIST/raw/ && chmod u+w data/MNIST/raw/*
  ls -la .whl data/MNIST/raw
  exit 0
fi

OUT=${OUT:-$(mktemp -d)}
export OUT PYTHONUNBUFFERED=1 DEEPDEPTH_DATA=${DEEPDEPTH_DATA:-$PWD/data}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "wheel install failed: run 'bash benchmarks/run_gpu.sh --prepare' first"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, lightning, torchvision, hydra; print('torch', torch.__version__, 'lightning', lightning.__version__, 'torchvision', torchvision.__version__, 'hydra', hydra.__version__)"
cd benchmarks && python3 bench_gpu.py 2>&1 | tee "$OUT/bench_gpu.log"
