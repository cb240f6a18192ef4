#!/usr/bin/env bash
# Build a project-local environment for mmadc from nothing.
#
#   tools/install/setup_env.sh            # creates/updates ./.venv
#   MMADC_VENV=/path/to/venv tools/install/setup_env.sh
#   MMADC_VENV=.venv-stack-min MMADC_STACK=requirements/stack_min.txt \
#     MMADC_EDITABLE=0 tools/install/setup_env.sh    # the lowest stack
#
# Installs the stack that MMADC_STACK pins (default requirements/stack.txt:
# torch + torchvision, mmengine, mmdet, mmsegmentation, openmim and runtime
# needs), full mmcv 2.1.0 (compiled ops) built against that torch,
# xtcocotools, mmpose, and mmadc itself: editable, or a copy with
# MMADC_EDITABLE=0 (tools/install/mmadc_copy.sh says when that is needed).
# Idempotent: when nothing that defines the environment changed since the
# last successful run, it only re-checks the imports. Every sharp edge of
# this stack it works around is commented where it is handled; the only
# build hack is tools/install/cxx_std20.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$(realpath -m "${MMADC_VENV:-$ROOT/.venv}")"
STACK="$(realpath -m "${MMADC_STACK:-$ROOT/requirements/stack.txt}")"
EDITABLE="${MMADC_EDITABLE:-1}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.mmadc-env-stamp"
# mmcv wheels built here, one folder per torch build (see step 4)
WHEELS="${MMADC_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmadc/wheels}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

if [[ ! -f "$STACK" ]]; then
  echo "setup_env.sh: MMADC_STACK: \"${MMADC_STACK}\" is not a requirements file" >&2
  exit 2
fi
if [[ "$EDITABLE" != 0 && "$EDITABLE" != 1 ]]; then
  echo "setup_env.sh: MMADC_EDITABLE must be 0 or 1, got \"$EDITABLE\"" >&2
  exit 2
fi
# shellcheck source=tools/install/mmadc_copy.sh
source "$ROOT/tools/install/mmadc_copy.sh"

step_no=0
step() { step_no=$((step_no + 1)); printf '\n==> [setup %d/9] %s\n' "$step_no" "$*"; }

# Everything that defines the environment; a change to any of these reruns
# the install steps (each of which is itself a no-op when satisfied).
fingerprint() {
  { echo "$STACK $EDITABLE"
    cat "$ROOT"/tools/install/*.sh "$ROOT"/tools/install/*.py "$ROOT"/requirements/*.txt \
        "$ROOT/setup.py" "$ROOT/setup.cfg" "$ROOT/pyproject.toml" \
        "$ROOT"/mmadc/ops/csrc/*
    if [[ "$EDITABLE" == 0 ]]; then mmadc_sources; fi
  } | sha256sum | cut -d' ' -f1
}

# (from / so that a copy install is checked, not the source tree)
check_env() {
  (cd / && "$VENV/bin/python" - <<'PY'
import mmcv, mmcv.ops, mmengine, mmdet, mmpose, mmseg, mmadc  # noqa: F401
from mmcv.ops import PSAMask, DeformConv2d  # noqa: F401  compiled ops load
import xtcocotools.coco, pycocotools.coco  # noqa: F401
PY
  )
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
# setuptools 81 removed. ninja parallelises the mmcv build. cython (and
# numpy, from the stack) build xtcocotools from source below.
"${PIP[@]}" install -q "setuptools>=77,<81" wheel ninja cython

step "PyTorch, mmengine, mmdet, mmsegmentation, openmim and runtime needs ($(basename "$STACK"))"
"${PIP[@]}" install -q -r "$STACK"
# Every later install keeps what the stack installed (numpy < 2 on the
# lowest stack would otherwise be upgraded by a test or deployment
# requirement). A constraints file must be flat: pip reads a nested -r of
# one as requirements, so the stack file itself cannot serve.
pins="$VENV/.mmadc-stack-pins.txt"
"${PIP[@]}" freeze --exclude-editable | grep '==' | grep -v '^mmcv==' > "$pins"
PIN=(-c "$pins")

step "mmcv 2.1.0 with compiled ops, built for this torch"
# pip's wheel cache is keyed by mmcv's version and Python, not by torch: an
# mmcv 2.1.0 wheel built against another torch installs, then fails with
# "mmcv._ext: undefined symbol". So mmcv is built with pip's cache off into
# a folder named after the exact torch build (torch_build_tag.py), and
# installed from there.
torch_build="$("$PY" "$ROOT/tools/install/torch_build_tag.py")"
mmcv_wheels="$WHEELS/$torch_build"
if "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '2.1.0')" 2>/dev/null; then
  echo "mmcv 2.1.0 with ops already installed."
else
  if ! compgen -G "$mmcv_wheels/mmcv-2.1.0-*.whl" >/dev/null; then
    log="$VENV/mmcv-build.log"
    echo "building mmcv for $torch_build (first build about 10-15 min on 2 cores);"
    echo "  wheel: $mmcv_wheels, full build log: $log"
    # CXX shim only where this torch's headers refuse mmcv's -std=c++17.
    cxx=()
    if grep -qs 'C++20 or later compatible compiler' \
        "$("$PY" -c 'import torch.utils.cpp_extension as e; print(e.include_paths()[0])')/ATen/ATen.h"; then
      cxx=(CXX="$ROOT/tools/install/cxx_std20.sh")
    fi
    built="$(mktemp -d)"
    # --no-build-isolation: build against the torch installed above.
    # The filter shows ninja's [done/total] progress lines only.
    env "${cxx[@]}" MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" \
      "${PIP[@]}" wheel -v --no-deps --no-cache-dir --no-build-isolation \
        -w "$built" "mmcv==2.1.0" 2>&1 \
      | tee "$log" \
      | awk '/^ *\[[0-9]+\/[0-9]+\]/ { src = ""; if (match($0, /[^ \/]+\.(cpp|cu|c) /)) src = substr($0, RSTART, RLENGTH - 1)
                                          printf "  mmcv build %s %s\n", $1, src; fflush() }
             /Successfully built|Saved|ERROR|[^_]error:/ { print "  " $0; fflush() }'
    mkdir -p "$mmcv_wheels"
    mv "$built"/mmcv-2.1.0-*.whl "$mmcv_wheels/"
    rm -rf "$built"
  fi
  echo "installing mmcv from $mmcv_wheels"
  "${PIP[@]}" install -q "${PIN[@]}" --force-reinstall --no-deps "$mmcv_wheels"/mmcv-2.1.0-*.whl
  # mmcv's own requirements (addict, yapf, ...), without touching torch
  "${PIP[@]}" install -q "${PIN[@]}" "$mmcv_wheels"/mmcv-2.1.0-*.whl
  if ! "$PY" -c "import mmcv.ops" 2>/dev/null; then
    echo "setup_env.sh: mmcv from $mmcv_wheels does not load against $torch_build;" >&2
    echo "  remove that folder and rerun to build it again" >&2
    exit 1
  fi
fi

step "xtcocotools 1.14.3 from source"
# Its PyPI wheel was built against numpy 1 and fails to import under
# numpy 2 ("numpy.dtype size changed"); building from source fixes that.
if "$PY" -c "import xtcocotools.coco" 2>/dev/null; then
  echo "xtcocotools already installed."
else
  "${PIP[@]}" install -q "${PIN[@]}" --no-build-isolation --no-binary xtcocotools "xtcocotools==1.14.3"
fi

step "mmpose 1.3.2 (without its chumpy requirement)"
# chumpy (SMPL body models only) does not build with current pip; mmpose's
# other runtime needs are in requirements/openmmlab_pins.txt.
"${PIP[@]}" install -q --no-deps "mmpose==1.3.2"

step "test, lint and deployment requirements"
# deploy.txt: onnx, onnxscript and onnxruntime for the ONNX export tool
# (the `mmadc[deploy]` extra), which the tests run; lint.txt: `make lint`.
"${PIP[@]}" install -q "${PIN[@]}" -r "$ROOT/requirements/tests.txt" \
  -r "$ROOT/requirements/lint.txt" -r "$ROOT/requirements/deploy.txt"

if [[ "$EDITABLE" == 1 ]]; then
  step "mmadc (editable, with its native ADC CPU kernel when a compiler is available)"
  # --no-build-isolation: the kernel compiles against this torch. Without a
  # compiler the install warns and ADC uses its reference implementation.
  "${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
else
  step "mmadc (a copy of the sources, with its native ADC CPU kernel)"
  install_mmadc_copy "${PIP[@]}"
fi

step "mim tool scripts for mmseg and check"
# `mim train/test PKG` runs PKG/.mim/tools/{train,test}.py. Some
# mmsegmentation 1.2.2 builds ship none; for any such package mmadc places
# scripts calling its generic entry points (a no-op where the package ships
# its own; see `python -m mmadc.compat.mim_tools --help`).
(cd / && "$PY" -m mmadc.compat.mim_tools install)
check_env
(cd / && "$PY" -m mmadc.utils.collect_env)

fingerprint > "$STAMP"
echo
echo "mmadc environment ready: source $VENV/bin/activate"
