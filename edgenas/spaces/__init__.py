"""Search spaces, registered by name: each turns architecture strings into encodings, networks and costs.
A space is one sub-package of this folder (`nb201/`), found by its folder name and registered there."""
import importlib
import pkgutil

from .archs import read_archs, read_latencies
from .base import Costs, SearchSpace
from .registry import DEFAULT_SPACE, SPACES, configure, get_space, register_space

for _package in pkgutil.iter_modules(__path__):
    if _package.ispkg:  # each sub-package registers its space
        importlib.import_module(f"{__name__}.{_package.name}")

__all__ = ["Costs", "DEFAULT_SPACE", "SPACES", "SearchSpace", "configure", "get_space", "read_archs",
           "read_latencies", "register_space"]
