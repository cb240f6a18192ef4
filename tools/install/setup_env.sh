#!/usr/bin/env bash
# Build the project-local environment for mmadc from nothing.
#
#   tools/install/setup_env.sh            # creates/updates ./.venv
#   MMADC_VENV=/path/to/venv tools/install/setup_env.sh
#
# Installs torch + torchvision, full mmcv 2.1.0 (compiled ops), mmengine,
# mmdet, mmpose, mmsegmentation, openmim, pycocotools, xtcocotools and mmadc
# itself (editable). Idempotent: when nothing that defines the environment
# changed since the last successful run, it only re-checks the imports.
# Every sharp edge of this stack it works around is commented where it is
# handled; the only build hack is tools/install/cxx_std20.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${MMADC_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.mmadc-env-stamp"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

step_no=0
step() { step_no=$((step_no + 1)); printf '\n==> [setup %d/9] %s\n' "$step_no" "$*"; }

# Everything that defines the environment; a change to any of these reruns
# the install steps (each of which is itself a no-op when satisfied).
fingerprint() {
  cat "$ROOT/tools/install/setup_env.sh" "$ROOT/tools/install/cxx_std20.sh" \
      "$ROOT"/requirements/*.txt "$ROOT/setup.py" "$ROOT/setup.cfg" \
      "$ROOT/pyproject.toml" "$ROOT"/mmadc/ops/csrc/* \
    | sha256sum | cut -d' ' -f1
}

check_env() {
  "$VENV/bin/python" - <<'PY'
import mmcv, mmcv.ops, mmengine, mmdet, mmpose, mmseg, mmadc  # noqa: F401
from mmcv.ops import PSAMask, DeformConv2d  # noqa: F401  compiled ops load
import xtcocotools.coco, pycocotools.coco  # noqa: F401
PY
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(fingerprint)" ]] && check_env 2>/dev/null; then
  echo "mmadc environment at $VENV is up to date."
  exit 0
fi

step "virtual environment at $VENV"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip)

step "build tools"
# setuptools < 81: openmim and mmcv's setup.py import pkg_resources, which
# setuptools 81 removed. ninja parallelises the mmcv build. cython + numpy
# are needed to build xtcocotools from source below.
"${PIP[@]}" install -q "setuptools>=77,<81" wheel ninja cython numpy

step "PyTorch, mmengine, mmdet, mmsegmentation, openmim and runtime needs"
# torch 2.14.1 / torchvision 0.29.1 are the newest pair this machine has on
# disk (see requirements/stack.txt for every pinned version).
"${PIP[@]}" install -q -r "$ROOT/requirements/stack.txt"

step "mmcv 2.1.0 with compiled ops (first build about 15 min on 2 cores; cached afterwards)"
if "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '2.1.0')" 2>/dev/null; then
  echo "mmcv 2.1.0 with ops already installed."
else
  log="$VENV/mmcv-build.log"
  echo "full build log: $log"
  # --no-build-isolation: build against the torch installed above.
  # CXX shim: mmcv asks for C++17, torch 2.14 headers need C++20.
  # The filter shows ninja's [done/total] progress lines only.
  CXX="$ROOT/tools/install/cxx_std20.sh" MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" \
    "${PIP[@]}" install -v --no-build-isolation "mmcv==2.1.0" 2>&1 \
    | tee "$log" \
    | awk '/^ *\[[0-9]+\/[0-9]+\]/ { src = ""; if (match($0, /[^ \/]+\.(cpp|cu|c) /)) src = substr($0, RSTART, RLENGTH - 1)
                                        printf "  mmcv build %s %s\n", $1, src; fflush() }
           /Successfully installed|Using cached|ERROR|[^_]error:/ { print "  " $0; fflush() }'
fi

step "xtcocotools 1.14.3 from source"
# Its PyPI wheel was built against numpy 1 and fails to import under
# numpy 2 ("numpy.dtype size changed"); building from source fixes that.
if "$PY" -c "import xtcocotools.coco" 2>/dev/null; then
  echo "xtcocotools already installed."
else
  "${PIP[@]}" install -q --no-build-isolation --no-binary xtcocotools "xtcocotools==1.14.3"
fi

step "mmpose 1.3.2 (without its chumpy requirement)"
# chumpy (SMPL body models only) does not build with current pip; mmpose's
# other runtime needs are in requirements/stack.txt.
"${PIP[@]}" install -q --no-deps "mmpose==1.3.2"

step "test, lint and deployment requirements"
# deploy.txt: onnx, onnxscript and onnxruntime for the ONNX export tool
# (the `mmadc[deploy]` extra), which the tests run; lint.txt: `make lint`.
"${PIP[@]}" install -q -r "$ROOT/requirements/tests.txt" \
  -r "$ROOT/requirements/lint.txt" -r "$ROOT/requirements/deploy.txt"

step "mmadc (editable, with its native ADC CPU kernel when a compiler is available)"
# --no-build-isolation: the kernel compiles against this torch. Without a
# compiler the install warns and ADC uses its reference implementation.
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

step "mim tool scripts for mmseg and check"
# `mim train/test PKG` runs PKG/.mim/tools/{train,test}.py. Some
# mmsegmentation 1.2.2 builds ship none; for any such package mmadc places
# scripts calling its generic entry points (a no-op where the package ships
# its own; see `python -m mmadc.compat.mim_tools --help`).
"$PY" -m mmadc.compat.mim_tools install
check_env
"$PY" -m mmadc.utils.collect_env

fingerprint > "$STAMP"
echo
echo "mmadc environment ready: source $VENV/bin/activate"
