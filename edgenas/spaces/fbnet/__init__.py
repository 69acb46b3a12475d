"""The FBNet space: the skeleton and operations (`layers`), the space's strings, encodings and costs (`space`),
and the PyTorch network (`network`)."""
from .space import FBNet

__all__ = ["FBNet"]
