#!/usr/bin/env bash
# make demo: the whole fwbench flow offline on scikit-learn's digits, in $FWBENCH_WORKSPACE.
set -euo pipefail
bin=${1:-.venv/bin}
ws=${FWBENCH_WORKSPACE:-demo}
mkdir -p "$ws"
export FWBENCH_WORKSPACE=$(cd "$ws" && pwd)
"$bin/fwbench" env
"$bin/fwbench" data prepare digits
echo "demo workspace: $FWBENCH_WORKSPACE"
