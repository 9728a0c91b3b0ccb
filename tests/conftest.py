"""Shared fixtures. Tests use DoTCoM-Tiny at small inputs; slow ones are marked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DOTCOM_SHARED", ROOT.parent / "shared"))
REFERENCE = SHARED / "reference"

# Intra-op threads: the machine's cores (at most 2, the CI machine's), shared out between
# pytest-xdist workers when there are several, so two workers do not run four OpenMP
# threads on two cores (they spin-wait each other).
_WORKERS = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1))
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1) // _WORKERS))


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


@pytest.fixture(scope="session", autouse=True)
def pattern_cache_of_this_run(tmp_path_factory):
    """The Core ML quantizer's pattern cache (quantize/pattern_cache.py) in this run's temp folder.

    Tests do not write into the user's ~/.cache, and they start like a fresh machine: with the
    patterns the package ships (none traced on the pinned stack). Under pytest-xdist the
    workers share one folder. Subprocesses (the CLI tests) inherit the variable.
    """
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "dotcom-mobile-cache"
    old = os.environ.get("DOTCOM_MOBILE_CACHE")
    os.environ["DOTCOM_MOBILE_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("DOTCOM_MOBILE_CACHE", None)
    else:
        os.environ["DOTCOM_MOBILE_CACHE"] = old


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


# ----------------------------------------------------------------------------- shared artifacts
#
# Lowering DoTCoM-Tiny is the suite's most expensive step (a minute or more on 2 cores), and
# half the test files need the same program. Each artifact below is built once per test run:
# once per session, and under pytest-xdist once for all workers (the first worker builds it
# into a cache folder under the run's base temp, behind a file lock; the others wait and read
# it). Tests treat these files as read-only: a test that writes copies first.


def shared_artifact(tmp_path_factory, name: str, build) -> Path:
    """The folder ``build(folder)`` filled for ``name``, built once per run (xdist workers share it)."""
    import shutil

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    from filelock import FileLock

    cache = tmp_path_factory.getbasetemp().parent / "shared_artifacts"
    cache.mkdir(exist_ok=True)
    folder = cache / name
    done = cache / f"{name}.done"
    with FileLock(str(cache / f"{name}.lock")):
        if not done.exists():  # built in place (manifests record their paths), marked when complete
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left: rebuilt, never half-read
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


def _export_result(folder: Path, stem: str):
    """The ``ExportResult`` of ``folder/stem.pte``, read back from its manifest."""
    import json

    from dotcom_mobile.export.api import ExportResult

    manifest_path = folder / f"{stem}.json"
    return ExportResult(path=folder / f"{stem}.pte", manifest_path=manifest_path,
                        manifest=json.loads(manifest_path.read_text()), seconds=0.0)


@pytest.fixture(scope="session")
def tiny_xnnpack_fp32(tmp_path_factory, trained_tiny):
    """``export --target xnnpack --bundled --etrecord`` of the trained Tiny (64x64): the .pte, .bpte,
    .etrecord and manifest every test of an fp32 XNNPACK program reads (export, bench, native
    runner, apps, eval, per-layer speed). The ETRecord costs no measurable export time."""
    from dotcom_mobile.export.api import export_model

    def build(folder: Path) -> None:
        export_model(checkpoint=trained_tiny, target="xnnpack", out_dir=folder, bundled=True, etrecord=True,
                     progress=False)

    return _export_result(shared_artifact(tmp_path_factory, "tiny_xnnpack_fp32", build), "dotcom_tiny_xnnpack_fp32")


def quantized_export(tmp_path_factory, checkpoint: Path, calib: Path, *, backend: str, num_calib: int):
    """``quantize --backend BACKEND`` (PTQ on ``num_calib`` images of ``calib``), then ``export``
    of the .pt2 to the same backend: ``(pt2 path, ExportResult)``. Built once per run.

    Without the per-layer report (``--no-per-layer``): it does not change the program, no
    reader of these artifacts looks at it, and test_quantize_mixed covers it end to end."""
    from dotcom_mobile.export.api import export_model
    from dotcom_mobile.quantize.api import quantize_model

    stem = f"dotcom_tiny_{backend}_q8"

    def build(folder: Path) -> None:
        q = quantize_model("dotcom_tiny", checkpoint=checkpoint, backend=backend, calib=calib,
                           num_calib=num_calib, out_dir=folder, progress=False, per_layer=False)
        export_model(quantized=q.pt2_path, target=backend, out_dir=folder / "out", etrecord=backend == "xnnpack",
                     progress=False)

    folder = shared_artifact(tmp_path_factory, f"{stem}_{num_calib}", build)
    return folder / f"{stem}.pt2", _export_result(folder / "out", stem)


@pytest.fixture(scope="session")
def tiny_xnnpack_q8(tmp_path_factory, trained_tiny, shapes_root):
    """The quantize room's own XNNPACK PTQ of the trained Tiny (32 training images), exported: (pt2, result)."""
    return quantized_export(tmp_path_factory, trained_tiny, shapes_root / "train", backend="xnnpack", num_calib=32)


@pytest.fixture(scope="session")
def tiny_coreml_q8(tmp_path_factory, trained_tiny, shapes_root):
    """``quantize --backend coreml`` of the trained Tiny (8 training images), exported to Core ML: (pt2, result)."""
    return quantized_export(tmp_path_factory, trained_tiny, shapes_root / "train", backend="coreml", num_calib=8)
