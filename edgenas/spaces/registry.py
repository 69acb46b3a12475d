"""Search spaces by name: `register_space` (a class decorator), `get_space`, and `configure`, which makes a
space for a device's batch and, when the network is trained on the user's data, for its images and classes."""
from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from ..errors import EdgenasError
from .base import SearchSpace

SPACES: dict[str, type[SearchSpace]] = {}
DEFAULT_SPACE = "nb201"  # what commands search when --space is not given


def register_space(cls: type[SearchSpace]) -> type[SearchSpace]:
    """Class decorator: make a search space available under `cls.name`."""
    SPACES[cls.name] = cls
    return cls


def get_space(name: str = DEFAULT_SPACE, **net_config) -> SearchSpace:
    if name not in SPACES:
        close = difflib.get_close_matches(name, list(SPACES), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise EdgenasError(f"no search space '{name}'; {hint}known: {', '.join(SPACES)}")
    return SPACES[name](**net_config)


def configure(space: str | SearchSpace, batch: int, data: Any = None) -> SearchSpace:
    """`space` as a configured search space: a name is configured with `batch`, a configured space is kept;
    with `data` (a dataset: `image_shape`, `classes`, `source`), its image size, channels and classes and
    `batch` replace those settings (the rest, such as a configured space's width, kept)."""
    if data is None:
        return space if isinstance(space, SearchSpace) else get_space(space, batch=batch)
    config = dataclasses.asdict(space.config) if isinstance(space, SearchSpace) else {}
    name = space.name if isinstance(space, SearchSpace) else space
    channels, size, _ = data.image_shape
    try:
        return get_space(name, **{**config, "batch": batch, "input_size": size, "in_channels": channels,
                                  "num_classes": len(data.classes)})
    except EdgenasError as e:
        raise EdgenasError(f"{data.source}: {e}") from None
