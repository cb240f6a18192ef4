#!/usr/bin/env sh
# Compiler shim for building mmcv 2.1.0 against torch >= 2.14.
#
# mmcv's setup.py hard-codes `-std=c++17`, but torch 2.14's ATen headers
# refuse anything older than C++20 ("C++20 or later compatible compiler is
# required to use ATen"). setup_env.sh points CXX at this script while (and
# only while) it builds mmcv; every other argument passes through unchanged.
# Remove it once mmcv or torch drops the mismatch.
real_cxx="${MMADC_REAL_CXX:-/usr/bin/c++}"
for arg in "$@"; do
  if [ "$arg" = "-std=c++17" ]; then
    set -- "$@" "-std=c++20"
  else
    set -- "$@" "$arg"
  fi
  shift
done
exec "$real_cxx" "$@"
