"""The NAS-Bench-201 cell: its operations and edges, the string format, and which nodes a cell's operations
make live, constant or zero (what the network computes, the exporter folds away and the costs count)."""
from __future__ import annotations

from dataclasses import dataclass

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to node, from node), in string order
FORMAT = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


def node_states(ops: tuple[str, ...]) -> list[str]:
    """For nodes 0..3: 'live' (depends on the cell input), 'const' (a nonzero constant) or 'zero'."""
    states = ["live"]
    for node in (1, 2, 3):
        kinds = set()
        for (to, frm), op in zip(EDGES, ops):
            if to != node or op == "none":
                continue
            src = states[frm]
            kinds.add("const" if src == "zero" and op in KERNEL else src)
        states.append("live" if "live" in kinds else "const" if "const" in kinds else "zero")
    return states


def used_nodes(ops: tuple[str, ...]) -> set[int]:
    """Nodes whose value reaches the cell output (node 3); the rest is dead code the exporter removes."""
    used = {3}
    for node in (2, 1):
        if any(to in used and frm == node and op != "none" for (to, frm), op in zip(EDGES, ops)):
            used.add(node)
    return used


@dataclass(frozen=True)
class NetConfig:
    channels: int = 16
    cells_per_stage: int = 5
    input_size: int = 32
    in_channels: int = 3
    num_classes: int = 10
    batch: int = 1
