"""model.h of a real artifact compiles as C99 and C++17 without warnings and states the manifest's values."""
from __future__ import annotations

import subprocess

import pytest

PROGRAM = r"""
#include <stdio.h>
#include "model.h"
int main(void) {
  long long n = 1;
  for (int i = 0; i < EDGENAS_INPUT0_NDIM; ++i) n *= edgenas_input0_shape[i];
  printf("%s;%s;%s;%s;%d;%lld;%d;%s;%d;%d;%lld\n", EDGENAS_ARCH, EDGENAS_TARGET, EDGENAS_TARGET_MACHINE,
         EDGENAS_INPUT0_NAME, EDGENAS_INPUT0_SIZE, n, EDGENAS_OUTPUT0_SIZE, EDGENAS_OUTPUT0_DTYPE,
         EDGENAS_INPUT0_DTYPE_CODE, EDGENAS_INPUT0_DTYPE_BITS, (long long)edgenas_output0_shape[1]);
  return 0;
}
"""


@pytest.mark.parametrize("compiler,flags", [("gcc", ["-x", "c", "-std=c99"]), ("g++", ["-x", "c++", "-std=c++17"])])
def test_header_compiles_and_states_the_manifest(small_artifact, tmp_path, compiler, flags):
    source = tmp_path / "main.txt"
    source.write_text(PROGRAM)
    exe = tmp_path / "main"
    subprocess.run([compiler, *flags, "-Wall", "-Wextra", "-Werror", "-I", str(small_artifact.directory),
                    str(source), "-o", str(exe)], check=True)
    m = small_artifact.manifest
    assert subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.strip().split(";") == [
        m["arch"], m["target"]["name"], "x86_64", "input", "3072", "3072", "10", "float32", "2", "32", "10"]
