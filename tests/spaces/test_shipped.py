"""What ships with each registered space is part of the package (a wheel holds only what pyproject names)."""
import tomllib
from pathlib import Path

from edgenas.spaces import SPACES

ROOT = Path(__file__).resolve().parents[2]


def test_every_space_and_its_checkpoint_are_packaged():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for name, cls in SPACES.items():
        package = cls.__module__.rsplit(".", 1)[0]
        assert package in config["packages"], f"{package} is not in pyproject's packages"
        if cls.checkpoint is not None:
            assert cls.checkpoint.is_file(), f"space '{name}' names {cls.checkpoint}, which does not exist"
            assert cls.checkpoint.name in config["package-data"].get(package, []), \
                f"{cls.checkpoint.name} of space '{name}' is not in pyproject's package-data for {package}"
