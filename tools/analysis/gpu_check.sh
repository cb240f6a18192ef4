#!/usr/bin/env bash
# Copyright (c) mmadc contributors. All rights reserved.
#
# Run tools/analysis/gpu_check.py from a plain checkout (no install, nothing
# of OpenMMLab: torch, torchvision and triton are enough), writing the JSON
# report and the log into OUT_DIR:
#
#     tools/analysis/gpu_check.sh OUT_DIR [gpu_check.py options]
#
# OUT_DIR/gpu_check.json  the report (rewritten after every item)
# OUT_DIR/gpu_check.log   everything the check printed, tracebacks included
#
# The check keeps within --budget-s (480 s by default, so that a rerun fits
# in 15 minutes); should an item hang, it is interrupted 60 s after the
# budget and the report keeps what was finished. PYTHON picks the
# interpreter (default python3).
set -u -o pipefail

usage='usage: tools/analysis/gpu_check.sh OUT_DIR [gpu_check.py options, e.g. --budget-s 480 --overwrite]'
if [ $# -lt 1 ] || [ -z "$1" ] || [ "${1#-}" != "$1" ]; then
    echo "$usage" >&2
    exit 2
fi
out_dir=$1
shift
for arg in "$@"; do
    case $arg in
        --out | --out=*)
            echo "gpu_check.sh: error: --out is OUT_DIR/gpu_check.json here; give OUT_DIR instead" >&2
            exit 2
            ;;
    esac
done

# the budget, for the guard against a hung item: the last --budget-s given
budget=480
previous=
for arg in "$@"; do
    case $arg in
        --budget-s=*) budget=${arg#--budget-s=} ;;
        *) [ "$previous" = --budget-s ] && budget=$arg ;;
    esac
    previous=$arg
done
case ${budget%%.*} in
    '' | *[!0-9]*) guard_s=540 ;; # gpu_check.py rejects it with one line
    *) guard_s=$((${budget%%.*} + 60)) ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$out_dir" || {
    echo "gpu_check.sh: error: cannot create OUT_DIR $out_dir" >&2
    exit 2
}
log=$out_dir/gpu_check.log
python=${PYTHON:-python3}

# the interpreter would run the Triton kernels on CPU tensors only
unset TRITON_INTERPRET
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

echo "gpu_check.sh: $python tools/analysis/gpu_check.py --out $out_dir/gpu_check.json $* (stopped after ${guard_s} s at the latest)" >"$log"
timeout --signal=INT --kill-after=30 "$guard_s" \
    "$python" "$repo/tools/analysis/gpu_check.py" \
    --out "$out_dir/gpu_check.json" "$@" 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "gpu_check.sh: stopped after $guard_s s; $out_dir/gpu_check.json holds the items finished before" | tee -a "$log" >&2
fi
exit "$status"
