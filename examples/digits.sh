#!/usr/bin/env bash
# The whole path, offline: scikit-learn's bundled 8x8 digits -> 4 briefly trained sample architectures condition
# the generator -> the architecture that fits the budget is generated, measured, trained, compiled and measured
# again -> the artifact is gated for CI and run from Python.    Usage: examples/digits.sh [OUT_DIR] [BUDGET_MS]
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
# Guard it as CI would (exit 1 when it misses the budget), and run it from Python as an application would.
.venv/bin/edgenas gate "$out/model" --target host --budget-ms "$budget" --junit "$out/gate.xml" --markdown "$out/gate.md"
.venv/bin/python - "$out" <<'PY'
import sys

import numpy as np
from sklearn.datasets import load_digits

import edgenas

model = edgenas.load(f"{sys.argv[1]}/model")
d = load_digits()
x = (d.images / 16.0).astype(np.float32)[:, None]
classes = model.manifest["outputs"][0]["classes"]
right = sum(classes[int(model.predict(x[i:i + 1]).argmax())] == str(d.target[i]) for i in range(len(x)))
print(f"edgenas.load: {right} of {len(x)} digits right ({100 * right / len(x):.2f} %, training data included)")
PY
