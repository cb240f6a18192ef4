# Sourced by the installers: install mmadc into a second environment as a
# copy of the sources, not editable.
#
# Two environments with editable installs of one tree would share the
# in-place native kernel (mmadc/ops/_adc_cpu*.so, one file name whatever
# the torch) and build/: each install would break the other's kernel. A
# copy compiles the kernel against its own torch, and its sources belong to
# the environment's fingerprint (otherwise the tests would run an earlier
# copy).

# mmadc_sources: everything a copy install reads, on stdout (for a
# fingerprint).
mmadc_sources() {
  find "$ROOT/mmadc" "$ROOT/configs" "$ROOT/tools" -type f \
       \( -name '*.py' -o -name '*.sh' -o -path '*/csrc/*' \) \
    | LC_ALL=C sort | xargs cat
  cat "$ROOT/model-index.yml"
}

# install_mmadc_copy PIP...: pip-install a copy of the sources with the
# given pip command (kernel compiled against that environment's torch).
install_mmadc_copy() {
  # global, not local: the EXIT trap also removes it after a failed install
  MMADC_COPY_SRC="$(mktemp -d)"
  trap 'rm -rf "$MMADC_COPY_SRC"' EXIT
  local src="$MMADC_COPY_SRC"
  # configs/, tools/ and model-index.yml: the wheel packages them (mmadc/.mim).
  cp -r "$ROOT/mmadc" "$ROOT/requirements" "$ROOT/setup.py" "$ROOT/setup.cfg" \
        "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/configs" "$ROOT/tools" \
        "$ROOT/model-index.yml" "$ROOT/MANIFEST.in" "$src/"
  find "$src" \( -name '*.so' -o -name '__pycache__' -o -name '.mim' \) -prune -exec rm -rf {} +
  MMADC_WITH_CPU_KERNEL="${MMADC_WITH_CPU_KERNEL:-1}" \
    "$@" install -q --no-deps --no-build-isolation --force-reinstall "$src"
  rm -rf "$src"
}
