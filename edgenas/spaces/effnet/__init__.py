"""The EfficientNet space: the skeleton and its blocks (`blocks`), the space's strings, encodings and costs
(`space`), and the PyTorch network (`network`)."""
from .space import EffNet

__all__ = ["EffNet"]
