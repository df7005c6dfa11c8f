#!/usr/bin/env bash
# make demo: the whole fwbench flow, offline, on scikit-learn's real digits.
# env -> data prepare -> fairness checks (incl. lockstep training of every Keras arm) -> demo
# matrix (both frameworks, 3 seeds, one run at a time)
# -> collect -> analyze -> report. Every step is an ordinary fwbench command; rerunning skips
# what is already done (finished runs, prepared data).
set -euo pipefail
bin=${1:-.venv/bin}
ws=${FWBENCH_WORKSPACE:-demo}
mkdir -p "$ws"
export FWBENCH_WORKSPACE=$(cd "$ws" && pwd)
fw="$bin/fwbench"
step() { printf '\n==> %s\n' "$*"; }

step "environment";            "$fw" env
step "data: digits";           "$fw" data prepare digits
# The demo's arms are pytorch and keras (TensorFlow): the other Keras arms (keras-jax,
# keras-torch) are checked by the same commands without --keras-backends.
step "fairness: parameter counts (18 rows)"; "$fw" models compare --keras-backends ''
step "fairness: audit of library-build differences"; "$fw" models audit
step "fairness: pixels";       "$fw" parity pixels --dataset digits
step "fairness: LR per step";  "$fw" parity lr --stage demo --keras-backends ''
step "fairness: matched models (weight transfer, logits)"; "$fw" parity models --keras-backends keras
# Fairness layer 4: PyTorch and each installed Keras arm (keras-tf, keras-jax, keras-torch)
# train 5 steps in lockstep from one start, FP32 then AMP (bfloat16 on a CPU): the report's
# grid of arm x precision x mode.
step "fairness: lockstep training, fp32"; "$fw" parity train --steps 5 --batch-size 16
step "fairness: lockstep training, amp";  "$fw" parity train --steps 5 --batch-size 16 --precision amp
# One run at a time: runs that overlap on a host are never timed against each other, and the
# demo's speed verdicts are meant to be read.
step "the demo matrix";        "$fw" run --stage demo --parallel 1
step "collect";                "$fw" collect --stage demo
step "analyze";                "$fw" analyze
step "report";                 "$fw" report
printf '\nReport: %s\n' "$FWBENCH_WORKSPACE/report/report.html"
