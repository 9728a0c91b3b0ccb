"""Helpers for tests that drive ``dotcom-mobile`` in-process (``from cli_helpers import ...``)."""

from __future__ import annotations

from pathlib import Path

import torch

from dotcom_mobile.cli import main


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    """``dotcom-mobile ARGV`` in this process: exit code, stdout, stderr (of this call only)."""
    capsys.readouterr()
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def one_error_line(capsys, argv: list[str]) -> str:
    """Run a command that must fail the user's way: exit 1 and exactly one ``Error: ...`` line."""
    rc, _, err = run_cli(capsys, argv)
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
