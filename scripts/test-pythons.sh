#!/usr/bin/env bash
# `npm run test:pythons`: the packaging tests (bindings/python/tests/test_packaging.py) on
# every Python the package supports that is installed here: the sdist and the wheel, each
# installed into a fresh venv of that Python outside the checkout, run a sender and a
# receiver through `dora run`. Looks for python3.9 ... python3.13 (pyproject.toml's
# classifiers) on PATH, in /opt/python3.X and /usr/local, and among pyenv's versions;
# DORA_TEST_PYTHONS, when set, is used as it is instead. Versions not found are reported
# by pytest as skipped, with the reason. Extra arguments go to pytest (e.g. -k wheel).
# With DORA_TS_SYSROOT set (scripts/python-sysroot.sh), every sdist and wheel is built
# against that sysroot.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3

# the first candidate that runs and is that version (a pyenv shim of a version not
# selected exists on PATH but fails)
find_python() {
  local version="$1" candidate
  local pyenv_root
  pyenv_root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  for candidate in "python$version" "/opt/python$version/bin/python$version" "/usr/local/bin/python$version" \
    "$pyenv_root"/versions/"$version".*/bin/"python$version"; do
    candidate="$(command -v "$candidate" 2>/dev/null)" || continue
    if [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$version" ]; then
      # a shim resolves to the real interpreter
      "$candidate" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  return 1
}

if [ -z "${DORA_TEST_PYTHONS:-}" ]; then
  found=()
  # the versions the package's classifiers name
  for version in $(grep -o '"Programming Language :: Python :: 3\.[0-9]*"' "$REPO/bindings/python/pyproject.toml" | grep -o '3\.[0-9]*'); do
    if python="$(find_python "$version")"; then
      found+=("$python")
    else
      echo "test-pythons: no Python $version found" >&2
    fi
  done
  DORA_TEST_PYTHONS="${found[*]:-}"
fi
export DORA_TEST_PYTHONS
echo "test-pythons: DORA_TEST_PYTHONS=$DORA_TEST_PYTHONS" >&2
for python in $DORA_TEST_PYTHONS; do
  echo "  $("$python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo '?')  $python" >&2
done
cd "$REPO"
exec "$PYTHON" -m pytest -p no:cacheprovider -v -s -rs --durations=0 bindings/python/tests/test_packaging.py "$@"
