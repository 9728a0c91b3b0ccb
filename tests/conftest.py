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


def _quick_train(model: torch.nn.Module, root: Path, epochs: int = 12) -> float:
    """Plain AdamW loop plus a BatchNorm re-estimation; returns val top-1."""
    from torchvision.datasets import ImageFolder

    tf = model.dotcom_meta["preprocess"].transform()
    loader = lambda split, shuffle: torch.utils.data.DataLoader(  # noqa: E731
        ImageFolder(root / split, transform=tf), batch_size=32, shuffle=shuffle,
        generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    model.train()
    for _ in range(epochs):
        for x, y in loader("train", True):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    # Few steps leave BatchNorm's running statistics behind the weights: re-estimate them
    # over shuffled batches. ImageFolder is sorted by class and colour carries the class,
    # so unshuffled batches hold one class each: their averaged variances miss the
    # between-class spread and the eval-mode model collapses (val top-1 63% instead of 100%).
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        for x, _ in loader("train", True):
            model(x)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader("val", False):
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    return correct / total


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory, shapes_root) -> Path:
    """A project checkpoint of DoTCoM-Tiny (4 classes, 64x64) trained well above chance."""
    import dotcom_mobile.model as M
    from dotcom_mobile.model.registry import save_checkpoint

    torch.manual_seed(0)
    model = M.create_model("dotcom_tiny", num_classes=4)
    classes = sorted(p.name for p in (shapes_root / "train").iterdir())
    model.dotcom_meta.update(class_names=classes, preprocess=M.PreprocessConfig((3, SHAPES_SIZE, SHAPES_SIZE), crop_pct=1.0))
    acc = _quick_train(model, shapes_root)
    assert acc >= 0.5, f"fixture model did not learn the shapes dataset (val top-1 {acc:.2f})"
    path = tmp_path_factory.mktemp("ckpt") / "dotcom_tiny_shapes.pth"
    save_checkpoint(path, model, extra={"val_top1": acc})
    return path


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
