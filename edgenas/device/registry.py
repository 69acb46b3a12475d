"""Registries of named things defined by YAML files (device profiles, compilation targets).

Each registry reads one folder name: the copy bundled with edgenas (top-level `profiles/`, `targets/` in a
checkout, inside the package once installed), then any folders the user adds (`--profiles DIR`, or the
environment variable EDGENAS_PROFILES / EDGENAS_TARGETS, os.pathsep-separated). A user file of the same
name replaces the bundled one, so adding a device is adding a file.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Callable, Generic, TypeVar

from ..errors import EdgenasError

T = TypeVar("T")
_PACKAGE = Path(__file__).resolve().parents[1]  # the edgenas package


def bundled_dir(folder: str) -> Path:
    """The bundled folder: inside the installed package, or beside it in a source checkout."""
    inside = _PACKAGE / folder
    return inside if inside.is_dir() else _PACKAGE.parent / folder


class Registry(Generic[T]):
    def __init__(self, what: str, folder: str, load: Callable[[Path], T]):
        self.what, self.folder, self._load = what, folder, load
        self.extra_dirs: list[Path] = []
        self._cache: dict[Path, T] = {}

    def add_dir(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_dir():
            raise EdgenasError(f"{self.what} folder {path} does not exist; pass an existing folder of *.yaml files")
        self.extra_dirs.insert(0, path)

    def dirs(self) -> list[Path]:
        env = os.environ.get(f"EDGENAS_{self.folder.upper()}", "")
        from_env = [Path(p) for p in env.split(os.pathsep) if p]
        return [*self.extra_dirs, *from_env, bundled_dir(self.folder)]

    def paths(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for d in reversed(self.dirs()):
            for path in sorted(d.glob("*.yaml")):
                found[path.stem] = path
        return dict(sorted(found.items()))

    def names(self) -> list[str]:
        return list(self.paths())

    def get(self, name: str) -> T:
        """The thing named `name`, or defined by the YAML file at the path `name` (one that ends in .yaml/.yml or
        holds a path separator)."""
        paths = self.paths()
        if name.endswith((".yaml", ".yml")) or os.sep in name:
            path = Path(name)
            if not path.is_file():
                raise EdgenasError(f"{self.what} file {name} does not exist; pass an existing YAML file or a "
                                   f"{self.what} name ({', '.join(paths)})")
        elif name not in paths:
            by_case = {k.lower(): k for k in paths}
            close = [by_case[name.lower()]] if name.lower() in by_case else \
                [by_case[c] for c in difflib.get_close_matches(name.lower(), list(by_case), n=1)]
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise EdgenasError(f"no {self.what} '{name}'; {hint}known: {', '.join(paths)} "
                               f"(add {self.folder}/{name}.yaml or pass a folder with --{self.folder})")
        else:
            path = paths[name]
        if path not in self._cache:
            self._cache[path] = self._load(path)
        return self._cache[path]
