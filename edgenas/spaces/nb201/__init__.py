"""The NAS-Bench-201 space: the cell (`cell`), the space's strings, encodings and costs (`space`), and the
PyTorch network (`network`); beside them the checkpoint meta-trained for it."""
from .space import NB201

__all__ = ["NB201"]
