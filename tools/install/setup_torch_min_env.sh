#!/usr/bin/env bash
# Build a second environment with the lowest torch mmadc supports, for the
# operator and layer tests (tests/test_ops): torch only, no OpenMMLab.
#
#   tools/install/setup_torch_min_env.sh      # creates/updates ./.venv-torch-min
#   MMADC_TORCH_MIN_VENV=/path tools/install/setup_torch_min_env.sh
#
# torch 2.1 is what the prebuilt mmcv 2.1.0 wheels most OpenMMLab users have
# are built for. `make test` runs tests/test_ops here after the main suite.
# Idempotent like setup_env.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${MMADC_TORCH_MIN_VENV:-$ROOT/.venv-torch-min}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.mmadc-env-stamp"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# shellcheck source=tools/install/mmadc_copy.sh
source "$ROOT/tools/install/mmadc_copy.sh"

# mmadc is installed as a copy (not editable; see mmadc_copy.sh), so its
# sources belong to the fingerprint too.
fingerprint() {
  { cat "$ROOT/tools/install/setup_torch_min_env.sh" "$ROOT/requirements/torch_min.txt" \
        "$ROOT/setup.py" "$ROOT/setup.cfg" "$ROOT/pyproject.toml"
    mmadc_sources; } | sha256sum | cut -d' ' -f1
}

# (from / so that the installed mmadc is imported, not the source tree's)
check_env() {
  (cd / && "$VENV/bin/python" -c 'import torch, torchvision, mmadc.ops._adc_cpu')
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(fingerprint)" ]] && check_env 2>/dev/null; then
  echo "mmadc lowest-torch environment at $VENV is up to date."
  exit 0
fi

echo "==> lowest-torch environment at $VENV"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
# torch 2.1 wheels come from PyPI as a CUDA build (about 2.5 GB the first
# time, cached by pip afterwards); they run on the CPU. numpy < 2: torch
# 2.1 was built against numpy 1.
"${PIP[@]}" install -q "setuptools>=77,<81" wheel ninja
"${PIP[@]}" install -q -r "$ROOT/requirements/torch_min.txt"

install_mmadc_copy "${PIP[@]}"
check_env
"$VENV/bin/python" -c 'import torch; print("mmadc lowest-torch environment ready: torch", torch.__version__)'
fingerprint > "$STAMP"
