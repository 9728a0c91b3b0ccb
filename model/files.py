"""One wording for "this path is not a file I can read", whatever the file is for.

Every command that takes a file (a checkpoint, a .pte, a .pt2, a report, an image)
checks it here first, so a missing path, a directory or a file without read permission
reads the same everywhere and never reaches a parser that would say something
stranger (``torch.load`` on a directory, ``zipfile`` on a permission error).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DotcomError


def require_file(path: str | os.PathLike[str], what: str = "") -> Path:
    """``path`` as a Path if it is a readable regular file; else one :class:`DotcomError` line.

    ``what`` ("checkpoint", "artifact", ...) prefixes the message when the path alone
    would not say what was expected: ``checkpoint x.pth: no such file``.
    """
    p = Path(path)
    name = f"{what} {p}" if what else str(p)
    if p.is_dir():
        raise DotcomError(f"{name} is a directory, not a file")
    if not p.exists():
        raise DotcomError(f"{name}: no such file")
    if not p.is_file():
        raise DotcomError(f"{name} is not a regular file")
    try:
        with open(p, "rb"):
            pass
    except PermissionError:
        raise DotcomError(f"{name}: permission denied (the file is not readable)") from None
    except OSError as e:
        raise DotcomError(f"{name}: cannot be read ({e.strerror or type(e).__name__})") from None
    return p
