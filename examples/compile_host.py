"""Compile one NB201 architecture for this machine with the Python API and print what was measured.

    .venv/bin/python examples/compile_host.py [OUT_DIR]
"""
import json
import sys

import edgenas

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"

space = edgenas.get_space("nb201")
print("static costs:", space.costs(ARCH).as_dict())
artifact = edgenas.compile_artifact("host", ARCH, sys.argv[1] if len(sys.argv) > 1 else "out/example")
print(json.dumps(artifact.report["latency_ms"], indent=2))
