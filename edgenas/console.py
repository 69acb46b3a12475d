"""What edgenas shows on the terminal while it works: the one progress bar every long step uses."""
from __future__ import annotations


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """`[#####...............] 5/20`: `done` of `total` steps."""
    filled = round(width * done / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
