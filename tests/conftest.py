"""Shared fixtures. Tests use DoTCoM-Tiny at small inputs; slow ones are marked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DOTCOM_SHARED", ROOT.parent / "shared"))
REFERENCE = SHARED / "reference"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE / "reference_dotcom_tiny_fixture.pt").exists():
        pytest.fail(f"reference fixture not found under {REFERENCE} (set DOTCOM_SHARED)")
    return REFERENCE


@pytest.fixture(scope="session")
def tiny_fixture(reference_dir: Path) -> dict:
    return torch.load(reference_dir / "reference_dotcom_tiny_fixture.pt", weights_only=True)
