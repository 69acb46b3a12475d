#!/usr/bin/env bash
# The whole path, offline: scikit-learn's bundled 8x8 digits -> 4 briefly trained sample architectures condition
# the generator -> the architecture that fits the budget is generated, measured, trained, compiled and measured
# again -> the artifact is gated for CI.    Usage: examples/digits.sh [OUT_DIR] [BUDGET_MS]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/digits}
budget=${2:-3}
mkdir -p "$out"
.venv/bin/python - "$out/digits.npz" <<'PY'
import sys

import numpy as np
from sklearn.datasets import load_digits

d = load_digits()
np.savez(sys.argv[1], x=(d.images / 16.0).astype(np.float32), y=d.target)  # 1,797 images, 8x8, 10 classes
PY
.venv/bin/edgenas compile --target host --data "$out/digits.npz" --latency-ms "$budget" --accuracy-shots 4 \
  --db "$out/measurements.sqlite" -o "$out/model"
