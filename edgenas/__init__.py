"""edgenas: a hardware-aware edge deployment compiler.

The path a model takes, one module per step: profile (`profile`, `target`) -> search space (`spaces`) ->
export (`export`) -> compile (`compile`) -> measure (`measure`) -> store (`store`); `pipeline` runs them
in order and writes the artifact, and `cli` is a thin command-line layer over it.
"""
__version__ = "0.1.0"
