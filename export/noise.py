"""Library messages a user of the CLI cannot act on, hidden unless ``-v/--verbose``.

Importing the stack prints things that describe the stack, not the user's input:
torchao registers its Enum types (``KernelPreference``, ...) with torch's pytree at
import and torch 2.14 logs that this is deprecated (``torch/utils/_pytree.py``);
coremltools logs at import that this torch and scikit-learn are untested and that its
macOS-only native proxies are missing. None of it changes a result, and the one line
that matters (``Error: ...``) should not sit under it.

:func:`quiet_known_noise` runs once per process, before those imports: in the CLI's
group callback and at the start of every child process the CLI spawns (the isolated
benchmark, demo's fp32 export). ``-v`` sets :data:`ENV` so those children show the
messages too. Only these named sources are lowered: a warning from anywhere else
still prints. It imports nothing but the standard library (``export/__init__.py`` is
empty), so the CLI's group callback can call it without loading torch
(``dotcom-mobile export --help`` stays instant); the export room is where this chatter
comes from (torchao, coremltools, the ExecuTorch backends), next to ``api._quiet_logs``
and ``Target.quiet`` for what lowering itself prints.
"""

from __future__ import annotations

import logging
import os

ENV = "DOTCOM_VERBOSE"

# logger name -> why it is noise (kept beside the name so the next one added says why too).
NOISY_LOGGERS: dict[str, str] = {
    "torch.utils._pytree": "torchao's Enum registration at import is deprecated in torch 2.14 (KernelPreference, ...)",
    "coremltools": "import-time notes: untested torch/scikit-learn versions, macOS-only native proxies missing",
}

_saved: dict[str, int] = {}


def verbose_requested() -> bool:
    """True when this process (or the CLI that started it) was asked for ``-v``."""
    return os.environ.get(ENV, "") not in ("", "0")


def quiet_known_noise(verbose: bool | None = None) -> None:
    """Lower :data:`NOISY_LOGGERS` to ERROR, or with ``verbose`` put them back as they were.

    ``verbose=None`` reads :data:`ENV` (how a child process learns about ``-v``);
    ``verbose=True`` also sets it, for the children this process will start.
    """
    if verbose is None:
        verbose = verbose_requested()
    elif verbose:
        os.environ[ENV] = "1"
    if verbose:
        for name, level in _saved.items():
            logging.getLogger(name).setLevel(level)
        _saved.clear()
        return
    for name in NOISY_LOGGERS:
        log = logging.getLogger(name)
        _saved.setdefault(name, log.level)
        log.setLevel(logging.ERROR)
