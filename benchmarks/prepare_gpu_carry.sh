#!/usr/bin/env bash
# Run HERE (network, repository root's .venv) right before the device call of
# benchmarks/gpu_check.sh; prints the `carry` list that call needs.
#
# The device image has torch, lightning, torchmetrics and torchvision but not hydra-core,
# omegaconf or antlr4-python3-runtime, no network and no ../shared/data. This fills the
# git-ignored folder .device/ with what travels:
#   .device/wheels/          hydra-core, omegaconf, antlr4-python3-runtime==4.9.3, and for
#                            STUDY_JOBS > 1 hydra-joblib-launcher and joblib (pure-Python wheels,
#                            the versions of this .venv; antlr4 4.9.3 exists only as an sdist)
#   .device/data/MNIST/raw/  MNIST's four .gz files
#   .device/gpu_study/       the GPU study's sweep dir, refreshed from the committed
#                            results/gpu_study/ (the record of finished trials), so a chunk resumes it
# deepdepth itself travels as the working tree (gpu_check.sh puts the repo root on PYTHONPATH).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEV=.device
SRC=${DEEPDEPTH_DATA:-../shared/data}/MNIST/raw
LIMIT=$((64 * 1024 * 1024))  # the device tool's limit on all that travels

mkdir -p "$DEV/wheels" "$DEV/data/MNIST/raw" "$DEV/gpu_study"
pins=$("$PY" -c 'from importlib.metadata import version as v
print(" ".join(f"{n}=={v(n)}" for n in ("hydra-core", "omegaconf", "hydra-joblib-launcher", "joblib")))')
rm -f "$DEV"/wheels/*.whl
"$PY" -m pip wheel -q --no-deps -w "$DEV/wheels" $pins antlr4-python3-runtime==4.9.3
for w in "$DEV"/wheels/*.whl; do
  case "$w" in *-py3-none-any.whl|*-py2.py3-none-any.whl) ;; *) echo "not pure Python: $w" >&2; exit 1 ;; esac
done

for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  cmp -s "$SRC/$f.gz" "$DEV/data/MNIST/raw/$f.gz" || install -m 644 "$SRC/$f.gz" "$DEV/data/MNIST/raw/$f.gz"
done

if [ -d results/gpu_study ]; then  # the committed record wins; trials only here stay too
  cp -a results/gpu_study/. "$DEV/gpu_study/"
fi

carry=("$DEV/wheels" "$DEV/data" "$DEV/gpu_study")
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
carried=$(du -cbs "${carry[@]}" | tail -1 | cut -f1)
ls -l "$DEV"/wheels
echo "MNIST: $(ls "$DEV/data/MNIST/raw" | wc -l) files; sweep dir: $(find "$DEV/gpu_study" -name result.json | wc -l) trials"
echo "working tree $((tree / 1024)) KiB + carried $((carried / 1024)) KiB of $((LIMIT / 1024)) KiB"
if [ $((tree + carried)) -gt $LIMIT ]; then echo "over the device tool's 64 MiB limit" >&2; exit 1; fi
printf 'carry: ["%s", "%s", "%s"]\n' "${carry[@]}"
