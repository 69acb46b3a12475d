"""Search spaces, registered by name: each turns architecture strings into encodings, networks and costs."""
from __future__ import annotations

import difflib

from ..errors import EdgenasError
from .base import Costs, SearchSpace

SPACES: dict[str, type[SearchSpace]] = {}


def register_space(cls: type[SearchSpace]) -> type[SearchSpace]:
    """Class decorator: make a search space available under `cls.name`."""
    SPACES[cls.name] = cls
    return cls


def get_space(name: str = "nb201", **net_config) -> SearchSpace:
    if name not in SPACES:
        close = difflib.get_close_matches(name, list(SPACES), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise EdgenasError(f"no search space '{name}'; {hint}known: {', '.join(SPACES)}")
    return SPACES[name](**net_config)


from . import nb201  # noqa: E402,F401  (registers the space)

__all__ = ["Costs", "SearchSpace", "SPACES", "get_space", "register_space"]
