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


SHAPES_SIZE = 64


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory) -> Path:
    """A learnable ImageFolder (train/ and val/, 4 classes of coloured shapes, 64x64)."""
    from dotcom_mobile.train.synthetic import make_shapes_dataset

    return make_shapes_dataset(tmp_path_factory.mktemp("shapes"), size=SHAPES_SIZE)


# ----------------------------------------------------------------------------- train tests


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a whole test module (``pytestmark = usefixtures("one_thread")``).

    Two OpenMP threads on a busy 2-core machine spin-wait each other (10x slower here).
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def small_shapes(tmp_path_factory) -> Path:
    """A small ImageFolder to train on: the 4 shapes classes, 16 train and 8 val images each, 64x64."""
    from dotcom_mobile.train.synthetic import make_shapes_dataset

    return make_shapes_dataset(tmp_path_factory.mktemp("small_shapes"), train_per_class=16, val_per_class=8,
                               size=SHAPES_SIZE)


FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def trained_tiny() -> Path:
    """DoTCoM-Tiny trained on the shapes dataset (4 classes, 64x64; val top-1 in the file).

    Shipped, not trained here: training runs on the CPU's own kernels, so a model trained
    at test time is another model on AVX2, AVX-512 or AMX, and thresholds drift with it.
    ``tests/fixtures/make_fixtures.py`` regenerates it.
    """
    return FIXTURES / "dotcom_tiny_shapes.pth"


@pytest.fixture(scope="session")
def trained_digits() -> Path:
    """DoTCoM-Tiny trained on scikit-learn's digit scans (10 classes, 64x64): real images."""
    return FIXTURES / "dotcom_tiny_digits.pth"


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory) -> Path:
    """The digits ImageFolder the ``trained_digits`` checkpoint was trained on (same seed and split)."""
    from dotcom_mobile.train.digits import make_digits_dataset

    return make_digits_dataset(tmp_path_factory.mktemp("digits"), size=SHAPES_SIZE)


@pytest.fixture(scope="session")
def toy(tmp_path_factory) -> dict:
    """A small conv net as portable/XNNPACK .pte, .bpte and .pt2 (tests/programs.py; seconds to lower)."""
    from programs import build_toy

    return build_toy(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    """A project checkpoint: dotcom_tiny, 4 named classes, 64x64 input (self-describing, untrained)."""
    import dotcom_mobile.model as M

    torch.manual_seed(0)
    model = M.create_model("dotcom_tiny", num_classes=4)
    model.dotcom_meta.update(class_names=["circle", "square", "star", "triangle"],
                             preprocess=M.PreprocessConfig((3, SHAPES_SIZE, SHAPES_SIZE), crop_pct=1.0))
    path = tmp_path_factory.mktemp("ckpt") / "tiny4.pth"
    M.save_checkpoint(path, model)
    return path
