"""The house follows the data path: every module of edgenas sits on a layer, written once below in data-path order,
and imports only from its own layer or lower ones (at the top of the file or inside a function); no modules import
each other in a cycle; no private name (`_x`) is imported from another module, in edgenas or in the tests."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edgenas"
# Lowest first. The ground: the error type, what Ctrl-C undoes, the progress bar, what this machine is, the [mobile]
# extra, how a model file runs; then the data path; then what runs it (pipeline), judges it (gate), benchmarks it
# (bench), the CLI.
LAYERS = ("errors", "interrupt", "console", "host", "mobile", "runtimes", "device", "spaces", "data", "nas",
          "compiler", "measure", "store", "artifact", "pipeline", "gate", "bench", "cli", "__main__")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    """The layer of an edgenas module; the package itself (`edgenas`: __version__ and the public API, named by
    string and imported on first use) is the ground."""
    parts = module.split(".")
    return -1 if len(parts) == 1 else LAYERS.index(parts[1])


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, known: dict[str, Path]) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import of an edgenas module in `path`, wherever
    it is written; `from package import submodule` counts as importing the submodule."""
    source = module_name(path) if path.is_relative_to(ROOT) else path.stem
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "edgenas"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = source.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "edgenas":
                continue
            names = [a.name for a in node.names]
            subs = [n for n in names if f"{target}.{n}" in known]
            found += [(f"{target}.{n}", [], node.lineno) for n in subs]
            rest = [n for n in names if n not in subs]
            if rest or not subs:
                found.append((target, rest, node.lineno))
    return found


def test_layers_are_written_in_data_path_order_and_cover_every_module():
    tops = {m.split(".")[1] for m in modules() if "." in m}
    assert tops == set(LAYERS), f"modules without a layer: {sorted(tops - set(LAYERS))}; " \
                                f"layers without a module: {sorted(set(LAYERS) - tops)}"


def test_no_import_climbs_to_a_higher_layer():
    known = modules()
    climbs = [f"{name} (layer {LAYERS[layer(name)]}) line {line} imports {target}"
              for name, path in known.items() for target, _, line in imports(path, known)
              if target in known and layer(target) > layer(name)]
    assert not climbs, "\n".join(climbs)


def test_no_import_cycles():
    known = modules()
    graph = {name: {t for t, _, _ in imports(path, known) if t in known and t != name} for name, path in known.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [node, nxt]) if nxt in stack else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not cycles, "\n".join(cycles)


def test_no_private_name_is_imported_across_modules():
    known = modules()
    files = [*known.values(), *(ROOT / "tests").rglob("*.py")]
    private = [f"{path.relative_to(ROOT)}:{line} imports {', '.join(n for n in names if n.startswith('_'))} from {target}"
               for path in files for target, names, line in imports(path, known)
               if any(n.startswith("_") and not n.startswith("__") for n in names)]
    assert not private, "\n".join(private)


def test_the_checks_catch_what_they_guard_against(tmp_path):
    """The walker sees imports inside functions, relative and absolute, and submodules named in `from` lists."""
    known = modules()
    probe = PACKAGE / "store.py"
    found = {t for t, _, _ in imports(probe, known)}
    assert "edgenas.measure.timing" in found and "edgenas.host" in found
    inside = tmp_path / "probe.py"
    inside.write_text("def f():\n    from edgenas.cli import shell\n    from edgenas.device.profile import _x\n")
    found = imports(inside, known)
    assert ("edgenas.cli.shell", [], 2) in found and ("edgenas.device.profile", ["_x"], 3) in found
    assert layer("edgenas.cli.shell") > layer("edgenas.store") > layer("edgenas.measure.timing")


def test_every_package_ships():
    """A folder of edgenas missing from pyproject.toml's package list works in a checkout and is absent from an
    installed edgenas (the Docker image, a wheel)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {module_name(p.parent / "__init__.py") for p in PACKAGE.rglob("__init__.py")}
    assert packages <= listed, f"add to [tool.setuptools] packages: {sorted(packages - listed)}"
