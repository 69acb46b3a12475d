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
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi

if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null && $sudo true 2>/dev/null; then
    echo "setup: installing Debian's gcc-aarch64-linux-gnu (cross linker for aarch64 targets)"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gcc-aarch64-linux-gnu >/dev/null
  else
    echo "setup: warning: aarch64-linux-gnu-gcc is missing and cannot be installed here (needs root and apt-get);" \
         "aarch64 targets will not link until you install gcc-aarch64-linux-gnu" >&2
  fi
fi
