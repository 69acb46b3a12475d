"""Files of architectures, as `edgenas measure --archs` reads them."""
from __future__ import annotations

from pathlib import Path

from ..errors import EdgenasError
from .base import SearchSpace


def read_archs(path: str | Path, sp: SearchSpace) -> list[str]:
    """The architectures of a file: one per line ('#' comments and blank lines skipped), or a CSV whose header
    has an 'arch' column; each checked against the space, an error naming the line."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise EdgenasError(f"cannot read {path} ({getattr(e, 'strerror', None) or e}); give a text file of "
                           f"architectures") from None
    numbered = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip() and not line.startswith("#")]
    column = None
    if numbered and "," in numbered[0][1]:
        header = [h.strip() for h in numbered[0][1].split(",")]
        if "arch" not in header:
            raise EdgenasError(f"{path}: a CSV needs an 'arch' column (header: {numbered[0][1]}); add one, or "
                               f"write one architecture per line")
        column, numbered = header.index("arch"), numbered[1:]
    archs = []
    for n, line in numbered:
        fields = line.split(",") if column is not None else [line]
        try:
            archs.append(sp.canonical(fields[column or 0].strip()))
        except (EdgenasError, IndexError) as e:
            raise EdgenasError(f"{path}:{n}: {e if isinstance(e, EdgenasError) else 'no arch field'}") from None
    if not archs:
        raise EdgenasError(f"{path} holds no architectures; write one per line")
    return archs
