"""The artifact directory is written whole or not at all: an existing artifact is replaced only with --force,
a failed compile leaves the old one as it was and nothing half-written beside it."""
import shutil

import pytest

from edgenas.artifact.manifest import read
from edgenas.errors import EdgenasError
from edgenas.pipeline.compile import check_output, compile_artifact

from ..conftest import ARCH, fails_with


def contents(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def test_output_checks_before_any_work(tmp_path, small_artifact):
    with pytest.raises(EdgenasError, match="-o '' names no directory"):
        check_output("")
    fails_with("-o '' names no directory", "compile", "-a", ARCH, "-o", "", "--no-measure")
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    for force in (False, True):  # a folder of other things is never replaced, not even with --force
        with pytest.raises(EdgenasError, match="holds files but no artifact; pass a new or empty directory"):
            check_output(other, force=force)
    art = shutil.copytree(small_artifact.directory, tmp_path / "art")
    with pytest.raises(EdgenasError, match="already holds an artifact; pass --force to replace it"):
        check_output(art)
    assert check_output(art, force=True) == art and check_output(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    (tmp_path / "empty").mkdir()
    assert check_output(tmp_path / "empty") == tmp_path / "empty"


def test_a_failed_compile_leaves_the_old_artifact_whole(tmp_path, small, small_artifact):
    art = shutil.copytree(small_artifact.directory, tmp_path / "art")
    before = contents(art)
    with pytest.raises(EdgenasError, match="unknown operation"):
        compile_artifact("host", ARCH.replace("3x3", "9x9", 1), art, space=small, measure_latency=False, force=True)
    assert contents(art) == before and sorted(p.name for p in tmp_path.iterdir()) == ["art"], \
        "no staging folder is left beside it"


def test_force_replaces_an_artifact_in_one_rename(tmp_path, small, small_artifact):
    art = shutil.copytree(small_artifact.directory, tmp_path / "art")
    (art / "stale.txt").write_text("from an older edgenas")
    replaced = compile_artifact("host", "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|",
                                art, space=small, measure_latency=False, force=True)
    assert replaced.directory == art and read(art).arch != small_artifact.manifest["arch"]
    assert not (art / "stale.txt").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["art"]
