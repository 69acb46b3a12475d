#!/usr/bin/env bash
# Set up edgenas in ./.venv: Python packages (CPU PyTorch first, so pip never pulls the CUDA build), then the
# aarch64 cross toolchain from Debian when it is missing. Safe to run again: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: edgenas needs Python >= 3.11, found $("$PY" --version); set PYTHON=/path/to/python3.11" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.edgenas-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # Where pip has no local CPU wheel, TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu avoids the CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  # [mobile]: LiteRT export and timing, which the tests exercise too; then the converter itself, which pip cannot
  # install beside TVM with its declared dependencies (edgenas/mobile.py says why).
  .venv/bin/python -m pip install -q -e ".[dev,mobile]"
  .venv/bin/python -m edgenas.mobile
  touch "$stamp"
fi

# The cross linker for aarch64 targets; the cross C++ compiler and qemu-user build and run examples/cpp for aarch64.
missing=""
command -v aarch64-linux-gnu-gcc >/dev/null || missing="$missing gcc-aarch64-linux-gnu"
command -v aarch64-linux-gnu-g++ >/dev/null || missing="$missing g++-aarch64-linux-gnu"
command -v qemu-aarch64 >/dev/null || missing="$missing qemu-user"
if [ -n "$missing" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null && $sudo true 2>/dev/null; then
    echo "setup: installing Debian's$missing (aarch64 cross toolchain and emulator)"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
  else
    echo "setup: warning:$missing cannot be installed here (needs root and apt-get); aarch64 targets will not" \
         "link without gcc-aarch64-linux-gnu, and the aarch64 C++ test is skipped without the others" >&2
  fi
fi
