#!/usr/bin/env bash
# make demo: the whole fwbench flow, offline, on scikit-learn's real digits.
# env -> data prepare -> fairness checks -> demo matrix (both frameworks, 2 models, 3 seeds)
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
# One run at a time: runs that overlap on a host are never timed against each other, and the
# demo's speed verdicts are meant to be read.
step "the demo matrix";        "$fw" run --stage demo --parallel 1
step "collect";                "$fw" collect --stage demo
step "analyze";                "$fw" analyze
step "report";                 "$fw" report
printf '\nReport: %s\n' "$FWBENCH_WORKSPACE/report/report.html"
