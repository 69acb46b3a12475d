"""edgenas: a hardware-aware edge deployment compiler.

The path a model takes, one module per step: profile (`profile`, `target`) -> search space (`spaces`) ->
export (`export`) -> compile (`compile`) -> measure (`measure`) -> store (`store`); `pipeline` runs them
in order and writes the artifact, and `cli` is a thin command-line layer over it.

    import edgenas
    artifact = edgenas.compile_artifact("host", "|nor_conv_3x3~0|+|...|", "out/host")
"""
__version__ = "0.1.0"

_API = {"compile_artifact": "pipeline", "measure_archs": "pipeline", "get_space": "spaces", "load": "runtime",
        "fetch_runtime_libs": "runtime_libs"}


def __getattr__(name: str):
    """The public API, imported on first use so that `import edgenas` stays cheap."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'edgenas' has no attribute '{name}'")
