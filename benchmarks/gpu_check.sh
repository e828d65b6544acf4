#!/usr/bin/env bash
# One GPU sitting, unattended, in <= 9 minutes on a lent H100/H200 (benchmarks/GPU_SESSION.md):
#   (1) the carried wheels installed, versions and nvidia-smi   (2) pytest -m gpu tests/test_gpu.py
#   (3) benchmarks/bench_gpu.py with a budget that fits          (4) a chunk of the GPU study
#       (+experiment=depth_study in .device/gpu_study, hydra.sweeper.time_budget = what is left;
#       a rerun resumes it), then python -m deepdepth.report on it
#   (5) everything packed into <= 8 files in $OUT (default ./gpu_out): gpu_check.log, steps.tsv,
#       pytest_gpu.xml, bench_gpu.md, bench_gpu.json, mem_probe.txt, pack_probe.json,
#       gpu_study.tar.gz (the sweep's small files).
# Each step is time-boxed with `timeout`, inside the total: GPU_CHECK_TOTAL_S, else what the device
# call was given, DEVICE_LIMIT_S (its timeout_s), less max(50, a tenth) for the start and the
# transfers (600 -> 540, 300 -> 250), else 530 s. The GPU tests and the benchmark run only when the
# code they cover changed since the last sitting that ran them (covered_hash against the committed
# benchmarks/gpu_runs/checked.tsv; FORCE_CHECKS=1 runs them anyway), inside TESTS_CAP / BENCH_CAP
# (default 60 / 200 s; 0 skips the step); the rest is the study's. A step that ran and passed
# writes its new hash to $OUT/checked.tsv: commit it as benchmarks/gpu_runs/checked.tsv.
# PROBE_CAP (default 0: skipped) runs benchmarks/gpu_memory_probe.py into $OUT/mem_probe.txt;
# PACK_CAP (default 0: skipped) runs benchmarks/packed_probe.py (packed resnet's step under cuDNN's
# algorithm search, channels-last, TF32; kernel profile) into $OUT/pack_probe.json, and the study
# chunk then takes the overrides it found safe and faster (its study_overrides), plus STUDY_REFINE
# (default: the committed study's refinement options; empty: none) and STUDY_EXTRA (e.g.
# 'hydra.sweeper.only=[resnet]' to give the whole chunk to resnet);
# STUDY_JOBS (default 1) runs that many study jobs at once on the GPU (joblib launcher).
#
#   bash benchmarks/prepare_gpu_carry.sh      # here, first: wheels, MNIST, the sweep dir -> .device/
#   bash benchmarks/gpu_check.sh              # on the device (the run tool; see GPU_SESSION.md)
#   bash benchmarks/gpu_check.sh --dry-run    # here: the same steps on the CPU with tiny sizes
#                                             # (depth_study_smoke, bench --dry-run, GPU tests skipped)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DRY=false; [ "${1:-}" = "--dry-run" ] && DRY=true
OUT=${OUT:-$ROOT/gpu_out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
[ "$OUT" = "$ROOT/gpu_out" ] && echo '*' > "$OUT/.gitignore"  # the local default never travels or gets committed
: > "$OUT/steps.tsv"

# per mode: the whole time (BASE_S unless GPU_CHECK_TOTAL_S), and what the tests and the benchmark
# leave for the steps after them (RESERVE_*, scaled with the whole time)
if $DRY; then
  BASE_S=330; PY=${PY:-$ROOT/.venv/bin/python}; SITE=$(mktemp -d)
  trap 'rm -rf "$SITE"' EXIT
  EXPERIMENT=depth_study_smoke; STUDY=${GPU_STUDY_DIR:-.device/dryrun_study}; BENCH_ARGS=--dry-run
  RESERVE_TESTS=250 RESERVE_BENCH=190 BENCH_CAP=${BENCH_CAP:-60}
  export CUDA_VISIBLE_DEVICES=""
else
  BASE_S=530; PY=${PY:-python3}; SITE=/tmp/site
  EXPERIMENT=depth_study; STUDY=${GPU_STUDY_DIR:-.device/gpu_study}; BENCH_ARGS=  # STUDY relative: no machine path in the records
  # the committed study's refinement, so the chunk keeps its state in the record (and refines on the GPU too)
  STUDY_REFINE=${STUDY_REFINE-hydra.sweeper.refine.fraction=0.25 hydra.sweeper.refine.seed_scheme=independent hydra.sweeper.refine.max_seeds=96}
  RESERVE_TESTS=330 RESERVE_BENCH=150 BENCH_CAP=${BENCH_CAP:-200}
fi
if [ -z "${GPU_CHECK_TOTAL_S:-}" ] && [ -n "${DEVICE_LIMIT_S:-}" ]; then
  margin=$((DEVICE_LIMIT_S / 10)); [ $margin -lt 50 ] && margin=50
  GPU_CHECK_TOTAL_S=$((DEVICE_LIMIT_S - margin))
fi
TOTAL_S=${GPU_CHECK_TOTAL_S:-$BASE_S}
RESERVE_TESTS=$((RESERVE_TESTS * TOTAL_S / BASE_S)) RESERVE_BENCH=$((RESERVE_BENCH * TOTAL_S / BASE_S))
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg PYTHONWARNINGS=ignore
export DEEPDEPTH_DATA=${DEEPDEPTH_DATA:-$ROOT/.device/data}
export PYTHONPATH=$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}

left() { echo $((TOTAL_S - SECONDS)); }

# What each check covers: a change to any of these files since the last sitting that ran the
# check reruns it; otherwise the sitting is all study.
COVERS_gpu_tests="tests/test_gpu.py deepdepth/trial/step.py deepdepth/trial/module.py deepdepth/trial/data.py deepdepth/trial/devices.py
  deepdepth/train.py deepdepth/trial/callbacks.py deepdepth/models deepdepth/trial/testing.py"
COVERS_bench="benchmarks/bench_gpu.py benchmarks/common.py deepdepth/trial/step.py deepdepth/trial/module.py deepdepth/trial/data.py
  deepdepth/models"
CHECKED=$ROOT/benchmarks/gpu_runs/checked.tsv
covered_hash() {  # covered_hash NAME: one sha256 over the covered files' paths and contents
  local var="COVERS_$1"
  (cd "$ROOT" && find ${!var} -type f -name '*.py' | sort | xargs sha256sum | sha256sum | cut -c1-16)
}
# due NAME CAP: the cap to give the check, 0 when its covered code is what the last sitting checked
due() {
  local name=$1 cap=$2 now last
  now=$(covered_hash "$name"); last=$(awk -F'\t' -v n="$name" '$1 == n {print $2}' "$CHECKED" 2>/dev/null)
  if [ "${FORCE_CHECKS:-0}" != 1 ] && [ "$now" = "$last" ]; then
    echo "=== $name: its covered code is unchanged since the sitting that ran it ($now): skipped" >&2; echo 0
  else
    echo "$cap"
  fi
}
# checked NAME: after a check that passed, its hash for the committed record
checked() {
  local name=$1
  [ "$(awk -F'\t' -v n="$name" '$1 == n {print $2}' "$OUT/steps.tsv" | tail -1)" = 0 ] || return 0
  [ -f "$OUT/checked.tsv" ] || cp "$CHECKED" "$OUT/checked.tsv" 2>/dev/null || : > "$OUT/checked.tsv"
  awk -F'\t' -v n="$name" '$1 != n' "$OUT/checked.tsv" > "$OUT/checked.tsv.new"
  printf '%s\t%s\t%s\n' "$name" "$(covered_hash "$name")" "$(date -u +%F)" >> "$OUT/checked.tsv.new"
  mv "$OUT/checked.tsv.new" "$OUT/checked.tsv"
}
# step NAME CAP RESERVE CMD...: run CMD for at most CAP s, leaving RESERVE s for the steps after it
step() {
  local name=$1 cap=$2 reserve=$3; shift 3
  local limit=$(( $(left) - reserve )); [ "$limit" -gt "$cap" ] && limit=$cap
  if [ "$limit" -lt 10 ]; then
    echo "=== $name: skipped, $(left) s left"; printf '%s\tskipped\t0\t%s\n' "$name" "$limit" >> "$OUT/steps.tsv"
    return 0
  fi
  echo "=== $name (limit $limit s, $(left) s left in all)"
  local t0=$SECONDS rc
  if declare -F "$1" > /dev/null; then  # a function below: in a bash of its own, which execs its last command
    timeout -k 10 "$limit" bash -c '"$@"' "$name" "$@"
  else
    timeout -k 10 "$limit" "$@"
  fi
  rc=$?
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && echo "=== $name: stopped at its limit of $limit s"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" $((SECONDS - t0)) "$limit" >> "$OUT/steps.tsv"
  echo "=== $name: rc $rc in $((SECONDS - t0)) s"
}

install_wheels() {
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    "$ROOT"/.device/wheels/*.whl || { echo "no wheels: run benchmarks/prepare_gpu_carry.sh here first"; return 1; }
  "$PY" - <<'EOF'
import importlib, sys
import torch
print("python", sys.version.split()[0], sys.executable)
for name in ("torch", "lightning", "torchmetrics", "torchvision", "hydra", "omegaconf", "antlr4", "deepdepth"):
    m = importlib.import_module(name)
    print(f"{name:12s} {getattr(m, '__version__', '?'):14s} {m.__file__}")
print("cuda", torch.cuda.is_available(), [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
EOF
  nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.sm --format=csv || echo "no nvidia-smi"
}

# The sweep stops launching jobs predicted to end after its time budget (frontier.json then holds
# every finished round); one that runs past the step's limit is killed (exec: `timeout` signals
# python itself, and SIGKILLs it 10 s later): its finished trials' result.json files stay, and the
# next chunk resumes from them. The 50 s between the step's limit and the sweep's budget: Hydra's
# start and the composition of every combination (~15 s) and a last job running late (jobs now
# fill a chunk up to its budget: a shorter one goes where a longer one waits).
study() {
  local budget=$(( $1 - 50 ))
  [ $budget -ge 20 ] || { echo "study: no time left for a chunk"; return 0; }
  echo "study: +experiment=$EXPERIMENT in $STUDY, time_budget $budget s, $(find "$STUDY" -name result.json 2>/dev/null | wc -l) jobs there"
  # A sitting can end before the pack step (the device's budget ran out first, 2026-11-28): every
  # 10 s while the sweep runs, a job that finished since is packed into $OUT, which comes back anyway.
  ( seen=-1
    while sleep 10 && kill -0 $$ 2>/dev/null; do
      [ -d "$STUDY" ] || continue
      now=$(find "$STUDY" -name result.json -printf '%p %s\n' 2>/dev/null | sort | md5sum)  # new or growing
      [ "$now" = "$seen" ] || { tar_study "$OUT/gpu_study.tar.gz.part" && mv "$OUT/gpu_study.tar.gz.part" "$OUT/gpu_study.tar.gz" && seen=$now; }
    done ) &
  local extra=($(study_overrides))
  if [ ${#extra[@]} -gt 0 ]; then  # a chunk that fails to compose loses the sitting's study: checked first
    if "$PY" -m deepdepth.train "+experiment=$EXPERIMENT" "${extra[@]}" --cfg job > /dev/null 2>&1; then
      echo "study: with ${extra[*]}"
    else
      echo "study: ${extra[*]} does not compose with +experiment=$EXPERIMENT; the chunk runs without it"; extra=()
    fi
  fi
  local launch=()  # STUDY_JOBS > 1: that many jobs at once on the one GPU, through Hydra's joblib launcher
  [ "$STUDY_JOBS" -gt 1 ] && launch=(hydra/launcher=joblib "hydra.launcher.n_jobs=$STUDY_JOBS" "gpu_jobs_per_device=$STUDY_JOBS")
  exec "$PY" -m deepdepth.train -m "+experiment=$EXPERIMENT" "hydra.sweep.dir=$STUDY" "hydra.sweeper.time_budget=$budget" \
    ${launch[@]+"${launch[@]}"} ${extra[@]+"${extra[@]}"}
}

# what the packed probe found the study may use (pack_probe.json's study_overrides), then
# STUDY_EXTRA, each once (Hydra refuses a +key given twice)
study_overrides() {
  { [ -f "$OUT/pack_probe.json" ] && "$PY" -c 'import json, sys
print(" ".join(json.load(open(sys.argv[1])).get("study_overrides") or []))' "$OUT/pack_probe.json" 2>/dev/null
    echo ${STUDY_REFINE:-} ${STUDY_EXTRA:-}; } | tr ' ' '\n' | awk 'NF && !seen[$0]++'
}

# tar_study FILE: the sweep dir's small files (no checkpoints, nothing over 2 MiB) into FILE
tar_study() {
  (cd "$STUDY" && find . -type f ! -name '*.ckpt' ! -name .sweep.lock -size -2097153c -print0 \
    | tar czf "$1" --null -T -)
}

memory_probe() { exec "$PY" benchmarks/gpu_memory_probe.py > "$OUT/mem_probe.txt" 2>&1; }

pack_study() {
  [ -d "$STUDY" ] || { echo "no sweep dir $STUDY"; return 0; }
  echo "left out of the tar (over 2 MiB or checkpoints):"
  (cd "$STUDY" && find . -type f \( -name '*.ckpt' -o -size +2097152c \) -print)
  tar_study "$OUT/gpu_study.tar.gz" && rm -f "$OUT/gpu_study.tar.gz.part"
  echo "gpu_study.tar.gz: $(tar tzf "$OUT/gpu_study.tar.gz" | wc -l) files, $(du -k "$OUT/gpu_study.tar.gz" | cut -f1) KiB"
  "$PY" - "$STUDY" <<'EOF'
import collections, json, pathlib, sys
rows = [json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1]).rglob("result.json")]
graphs = collections.Counter((r.get("device"), bool((r.get("cuda_graph") or {}).get("used")),
                              (r.get("cuda_graph") or {}).get("failed"), r.get("cudnn_benchmark"),
                              r.get("memory_format")) for r in rows)
print(f"study: {len(rows)} trial records, {sum(r.get('seconds', 0) for r in rows):.0f} s of training;"
      " (device, cuda_graph used, capture failure, cudnn_benchmark, memory_format): count", dict(graphs))
EOF
}

main() {
  echo "gpu_check $($DRY && echo --dry-run) $(date -u '+%F %T UTC') on ${HOSTNAME:-?}; OUT=$OUT; $TOTAL_S s in all"
  step install 90 0 install_wheels
  local tests_cap bench_cap
  tests_cap=$(due gpu_tests "${TESTS_CAP:-60}"); bench_cap=$(due bench "$BENCH_CAP")
  step gpu_tests "$tests_cap" "$RESERVE_TESTS" \
    "$PY" -m pytest -m gpu -q -p no:cacheprovider tests/test_gpu.py --junitxml="$OUT/pytest_gpu.xml"
  $DRY || checked gpu_tests
  local bench_limit=$(( $(left) - RESERVE_BENCH )); [ $bench_limit -gt "$bench_cap" ] && bench_limit=$bench_cap
  export BENCH_HARD_S=$((bench_limit - 15)) BENCH_BUDGET_S=$((bench_limit - 60))
  step bench "$bench_cap" "$RESERVE_BENCH" "$PY" benchmarks/bench_gpu.py $BENCH_ARGS
  $DRY || checked bench
  step memory_probe "${PROBE_CAP:-0}" "$RESERVE_BENCH" memory_probe
  local probe_limit=$(( $(left) - RESERVE_BENCH )); [ $probe_limit -gt "$PACK_CAP" ] && probe_limit=$PACK_CAP
  export PACK_PROBE_BUDGET_S=$((probe_limit - 10))
  step pack_probe "$PACK_CAP" "$RESERVE_BENCH" "$PY" benchmarks/packed_probe.py $BENCH_ARGS
  local study_limit=$(( $(left) - 50 ))
  step study "$study_limit" 50 study "$study_limit"
  step report 40 10 "$PY" -m deepdepth.report "$STUDY"
  step pack 30 0 pack_study
  echo "=== steps (name, rc, seconds, limit) after $SECONDS s:"; column -t "$OUT/steps.tsv" 2>/dev/null || cat "$OUT/steps.tsv"
  ls -l "$OUT"
  local files; files=$(find "$OUT" -type f ! -name .gitignore ! -name gpu_check.log | wc -l)
  [ "$files" -le 7 ] || echo "WARNING: $((files + 1)) files in $OUT; only 8 come back"
}

export -f install_wheels study study_overrides tar_study memory_probe pack_study
export OUT ROOT PY SITE EXPERIMENT STUDY STUDY_JOBS=${STUDY_JOBS:-1} PACK_CAP=${PACK_CAP:-0}
main 2>&1 | tee "$OUT/gpu_check.log"  # the pipeline ends when tee has written the last line
