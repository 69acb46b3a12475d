"""Search spaces by name: `register_space` (a class decorator), `get_space`, and `configure`, which makes a
space for a device's batch and, when the network is trained on the user's data, for its images and classes."""
from __future__ import annotations

import dataclasses
import difflib
import inspect
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


def takes_any_shape(space: SearchSpace | type[SearchSpace]) -> bool:
    """Whether the space's networks take images that are not square (an `input_width` beside `input_size`)."""
    return "input_width" in inspect.signature(space.__init__).parameters


def configure(space: str | SearchSpace, batch: int, data: Any = None) -> SearchSpace:
    """`space` as a configured search space: a name is configured with `batch`, a configured space is kept;
    with `data` (a dataset: `image_shape`, `classes`, `source`), its image size, channels and classes and
    `batch` replace those settings (the rest, such as a configured space's width, kept). Images that are not
    square go to spaces whose networks take an `input_width` beside `input_size` (the height)."""
    if data is None:
        return space if isinstance(space, SearchSpace) else get_space(space, batch=batch)
    config = dataclasses.asdict(space.config) if isinstance(space, SearchSpace) else {}
    name = space.name if isinstance(space, SearchSpace) else space
    channels, height, width = data.image_shape
    shape = {"input_size": height}
    if takes_any_shape(type(space) if isinstance(space, SearchSpace) else type(get_space(name))):
        shape["input_width"] = width
    elif width != height:
        others = [n for n, cls in SPACES.items() if takes_any_shape(cls)]
        raise EdgenasError(f"{data.source}: images are {height}x{width}; search space '{name}' takes square "
                           f"images only; resize them, or use --space {' or '.join(others) or 'of another kind'}")
    try:
        return get_space(name, **{**config, **shape, "batch": batch, "in_channels": channels,
                                  "num_classes": len(data.classes)})
    except EdgenasError as e:
        raise EdgenasError(f"{data.source}: {e}") from None
