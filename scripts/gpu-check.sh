#!/usr/bin/env bash
# GPU evidence in one call (at most ~8 minutes, no network): on a CUDA machine,
#   1. make a CIFAR-10-format set of random images (a colour per class blended into the noise,
#      so a model can learn it; tests/fakedata.py's writer) and prepare it with its own MD5s;
#   2. `fwbench smoke` every arm this machine can run on ResNet-50 (fp32 and amp): checks that
#      each trains, its speed and memory, the stage's estimated wall time;
#   3. `fwbench bench` every arm x ResNet-50, MobileNetV2 x fp32, amp, bare loop vs fwbench's
#      step, all under the same determinism rule (--deterministic on);
#   4. print the README's GPU table with the date, the GPU and the versions.
# Each phase is time-boxed (SMOKE_S, BENCH_S seconds); bench.csv keeps every finished job, so a
# phase cut short still prints what it measured.
#
# Usage: scripts/gpu-check.sh [WORKDIR]   (default: a new temporary folder)
# Knobs: SMOKE_S=200 BENCH_S=230 SMOKE_STEPS=40 SMOKE_MODELS=resnet50 BATCH=256
#        BENCH_MODELS=resnet50,mobilenetv2 BENCH_STEPS=10 BENCH_REPEATS=2 ARMS=<detected>
#        PER_CLASS=1000 (images per class and batch file: 1000 is CIFAR-10's full size)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-$(mktemp -d -t fwbench-gpu-check-XXXX)}"
SMOKE_S="${SMOKE_S:-200}" BENCH_S="${BENCH_S:-230}"
SMOKE_STEPS="${SMOKE_STEPS:-40}" SMOKE_MODELS="${SMOKE_MODELS:-resnet50}" BATCH="${BATCH:-256}"
BENCH_STEPS="${BENCH_STEPS:-10}" BENCH_REPEATS="${BENCH_REPEATS:-2}"
BENCH_MODELS="${BENCH_MODELS:-resnet50,mobilenetv2}" PER_CLASS="${PER_CLASS:-1000}"
PY="${PYTHON:-python}"
if [ -x "$ROOT/.venv/bin/python" ] && [ -z "${PYTHON:-}" ]; then PY="$ROOT/.venv/bin/python"; fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export FWBENCH_WORKSPACE="$WORK/ws"
FW=("$PY" -m fwbench.cli)

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "error: no NVIDIA GPU here (nvidia-smi). Run this on a CUDA machine." >&2
  exit 2
fi
mkdir -p "$WORK/src" "$FWBENCH_WORKSPACE/configs"
started=$(date +%s)
echo "== gpu-check in $WORK ($(date -u +%Y-%m-%dT%H:%MZ))"

# 1. data: full CIFAR-10 size (50,000 + 10,000 images), learnable, prepared with its own MD5s
PYTHONPATH="$ROOT/tests:$PYTHONPATH" "$PY" - "$WORK/src" "$PER_CLASS" <<'EOF'
import json, sys
from pathlib import Path
from fakedata import checksums_for, write_cifar10
src, n = Path(sys.argv[1]), int(sys.argv[2])
folder = write_cifar10(src, per_class_per_batch=n, per_class_test=n, seed=0, signal=0.3)
(src / "md5.json").write_text(json.dumps(checksums_for(folder)))
EOF
partial=(); [ "$PER_CLASS" -lt 1000 ] && partial=(--partial)
"${FW[@]}" data prepare cifar10 --source "$WORK/src" --checksums "$WORK/src/md5.json" \
  "${partial[@]}" >/dev/null
echo "== data prepared ($(( $(date +%s) - started )) s)"

# 2. the arms this machine can run on its GPU (the GPU machine may lack TensorFlow or a CUDA jax)
if [ -z "${ARMS:-}" ]; then
  ARMS=$("$PY" - <<'EOF'
import importlib.util, subprocess, sys
def gpu(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
arms = []
if gpu("import torch; assert torch.cuda.is_available()"):
    arms.append("pytorch")
if importlib.util.find_spec("tensorflow") and gpu(
        "import tensorflow as tf; assert tf.config.list_physical_devices('GPU')"):
    arms.append("keras")
if importlib.util.find_spec("jax") and gpu(
        "import jax; assert jax.devices()[0].platform == 'gpu'"):
    arms.append("keras-jax")
if "pytorch" in arms and importlib.util.find_spec("keras"):
    arms.append("keras-torch")
print(",".join(arms))
EOF
)
fi
echo "== arms on this GPU: $ARMS"
MATRIX="$FWBENCH_WORKSPACE/configs/gpu-check.yaml"
cat > "$MATRIX" <<EOF
stages:
  gpu-check:
    description: "gpu-check: CIFAR-10-format random set, every arm of this machine, 3 seeds"
    datasets: [cifar10]
    models: [${BENCH_MODELS//,/, }]
    precisions: [fp32, amp]
    seeds: [42, 43, 44]
    frameworks: [${ARMS//,/, }]
    overrides:
      training: {batch_size: $BATCH, deterministic: true}
EOF

# 3. smoke (exit status kept: a failing arm is a finding, the bench still runs)
smoke_status=0
timeout "$SMOKE_S" "${FW[@]}" smoke --stage gpu-check --matrix "$MATRIX" \
  --only "model=${SMOKE_MODELS//,/|}" --steps "$SMOKE_STEPS" || smoke_status=$?
echo "== smoke exit $smoke_status ($(( $(date +%s) - started )) s)"

# 4. bench: bare loop vs fwbench's step, same determinism in every arm
bench_status=0
timeout "$BENCH_S" "${FW[@]}" bench --frameworks "$ARMS" --models "$BENCH_MODELS" \
  --precisions fp32,amp --batch-sizes "$BATCH" --dataset cifar10 --modes bare,harness \
  --steps "$BENCH_STEPS" --warmup 3 --repeats "$BENCH_REPEATS" --deterministic on \
  || bench_status=$?
echo "== bench exit $bench_status ($(( $(date +%s) - started )) s)"

# 5. the README table
"$PY" - "$FWBENCH_WORKSPACE/results/bench.csv" "$ROOT" <<'EOF'
import importlib.metadata as md, subprocess, sys, time
from pathlib import Path
import pandas as pd
csv, root = Path(sys.argv[1]), sys.argv[2]
if not csv.is_file():
    sys.exit("no bench rows were written")
t = pd.read_csv(csv)
gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                     capture_output=True, text=True).stdout.strip().splitlines()[0]
def version(p):
    try:
        return md.version(p)
    except md.PackageNotFoundError:
        return None
versions = ", ".join(f"{p} {v}" for p in ("torch", "jax", "jaxlib", "keras", "tensorflow")
                     if (v := version(p)))
commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                        capture_output=True, text=True).stdout.strip() or "?"
print(f"\nGPU: **{gpu}**, {versions}; fwbench {commit}; {time.strftime('%Y-%m-%d')}; "
      f"batch {t['batch_size'].iloc[0]}, 32x32, CIFAR-10-format random set, "
      f"determinism on in every arm ({', '.join(sorted(set(t['framework'])))}), TF32 off.\n")
print("| arm | model | precision | bare images/s | harness images/s | harness/bare | "
      "determinism |")
print("|---|---|---|---|---|---|---|")
for (fw, model, prec), g in t.groupby(["framework", "model", "precision"], sort=True):
    by = g.set_index("mode")
    bare = by["samples_per_sec"].get("bare", float("nan"))
    harness = by["samples_per_sec"].get("harness", float("nan"))
    ratio = by["ratio_to_ref"].get("harness", float("nan"))
    print(f"| {fw} | {model} | {prec} | {bare:,.1f} | {harness:,.1f} | {ratio:.3f} | "
          f"{g['determinism'].iloc[0]} |")
rules = t.groupby("framework")["deterministic"].unique()
print("\nevery arm's rows carry the same determinism:",
      all(len(v) == 1 and bool(v[0]) for v in rules))
EOF
echo "== done in $(( $(date +%s) - started )) s (smoke exit $smoke_status, bench exit $bench_status)"
