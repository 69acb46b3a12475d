"""edgenas: a hardware-aware edge deployment compiler.

The folders follow the path a model takes: the device (`device`: profiles, targets, budgets) -> the search
space (`spaces`) -> few-shot search (`nas`) -> build (`compiler`: export, compile, tune) -> measure (`measure`)
-> store (`store`) -> artifact (`artifact`) -> CI gate (`gate`). `pipeline` runs the steps in order, `bench`
benchmarks them, and `cli` is a thin command-line layer over it all. Beneath everything: what this machine
is (`host`), how a model file runs (`runtimes`), the user's data (`data`), errors and the progress bar.

    import edgenas
    artifact = edgenas.compile_artifact("host", "|nor_conv_3x3~0|+|...|", "out/host")
"""
__version__ = "0.1.0"

_API = {"compile_artifact": "pipeline.compile", "compile_model": "pipeline.compile",
        "compile_for_budget": "pipeline.budget",
        "measure_archs": "pipeline.measure_archs", "get_space": "spaces", "load": "artifact.load",
        "fetch_runtime_libs": "artifact.runtime_libs"}


def __getattr__(name: str):
    """The public API, imported on first use so that `import edgenas` stays cheap."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'edgenas' has no attribute '{name}'")
