"""Calibration and validation inputs, preprocessed exactly as the deployed model sees them.

Calibration sets the int8 ranges, so it must use the model's own preprocessing at the
export input size: images normalised differently would calibrate ranges the phone
never sees. Files that are not readable images are skipped and counted (a real
calibration folder is rarely clean) and a folder with none left is an error.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from dotcom_mobile.model import DotcomError, PreprocessConfig, find_images, load_image


@dataclass
class ImageSet:
    """Preprocessed inputs ``[N, 3, H, W]``, optional labels, and where they came from."""

    inputs: torch.Tensor
    labels: torch.Tensor | None = None
    source: str = "synthetic"
    files_found: int = 0
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def batches(self, batch_size: int = 16) -> Iterable[torch.Tensor]:
        for i in range(0, len(self), batch_size):
            yield self.inputs[i: i + batch_size]

    def summary(self) -> dict:
        return {"source": self.source, "images": len(self), "files_found": self.files_found,
                "skipped": len(self.skipped), "skipped_files": self.skipped[:20]}


def _candidates(folder: Path) -> list[Path]:
    """Every file below ``folder`` (not only image extensions: non-images are counted)."""
    if not folder.is_dir():
        raise DotcomError(f"calibration folder {folder}: not a directory")
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def load_image_folder(
    folder: str | Path,
    preprocess: PreprocessConfig,
    limit: int | None = None,
    *,
    seed: int = 0,
    progress: Callable[[Sequence[Path]], Iterable[Path]] | None = None,
) -> ImageSet:
    """Up to ``limit`` images below ``folder`` (recursive), as one preprocessed tensor.

    When there are more images than ``limit``, a seeded random subset is taken so that
    calibration does not see only the first class of a sorted folder; unreadable files
    are replaced by further images.
    """
    root = Path(folder)
    files = _candidates(root)
    images = set(find_images(root))
    skipped = [str(p.relative_to(root)) for p in files if p not in images]
    chosen = [p for p in files if p in images]
    if limit is not None and len(chosen) > limit:
        random.Random(seed).shuffle(chosen)
    tf = preprocess.transform()
    tensors = []
    for p in (progress(chosen) if progress and chosen else chosen):
        if limit is not None and len(tensors) >= limit:
            break
        try:
            tensors.append(tf(load_image(p)))
        except DotcomError:  # a broken file with an image extension: skip it, read another
            skipped.append(str(p.relative_to(root)))
    if not tensors:
        what = f"{len(files)} files, none a readable image" if files else "it is empty"
        raise DotcomError(f"no usable calibration image in {root} ({what}; jpg, png, webp, bmp are read)")
    return ImageSet(torch.stack(tensors), None, str(root), len(files), skipped)


FEW_CALIB = 8  # fewer calibration images than this: the report warns


def calibration_warnings(data: ImageSet, folder: str | Path) -> list[str]:
    """What the user should hear about a calibration set that loaded: skipped files, too few images."""
    warnings = []
    if data.skipped:
        warnings.append(f"{len(data.skipped)} file(s) in {folder} are not readable images and were skipped")
    if len(data) < FEW_CALIB:
        warnings.append(f"only {len(data)} calibration image(s) in {folder}: int8 ranges from so few images "
                        f"are unreliable (use {FEW_CALIB * 4} or more)")
    return warnings


def load_labelled(folder: str | Path, preprocess: PreprocessConfig, class_names: Sequence[str]) -> ImageSet:
    """An ImageFolder split (``folder/<class>/*``) with labels in the model's class order."""
    root = Path(folder)
    if not root.is_dir():
        raise DotcomError(f"{root}: not a directory")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DotcomError(f"{root} has no class folders (expected {root}/<class>/<image>)")
    index = {c: i for i, c in enumerate(class_names)}
    unknown = [c for c in classes if c not in index]
    if unknown:
        raise DotcomError(
            f"{root}: class folder(s) {', '.join(unknown[:5])} are not classes of the model "
            f"({', '.join(list(class_names)[:8])}{', ...' if len(class_names) > 8 else ''})"
        )
    tf = preprocess.transform()
    xs, ys, skipped, found = [], [], [], 0
    for c in classes:
        for p in _candidates(root / c):
            found += 1
            try:
                xs.append(tf(load_image(p)))
                ys.append(index[c])
            except DotcomError:
                skipped.append(str(p.relative_to(root)))
    if not xs:
        raise DotcomError(f"no readable image in {root}")
    return ImageSet(torch.stack(xs), torch.tensor(ys), str(root), found, skipped)


def synthetic_inputs(preprocess: PreprocessConfig, n: int, seed: int = 0) -> ImageSet:
    """Random images pushed through the normalisation: ranges only roughly right."""
    g = torch.Generator().manual_seed(seed)
    _, h, w = preprocess.input_size
    pixels = torch.rand(n, 3, h, w, generator=g)
    mean = torch.tensor(preprocess.mean).view(1, 3, 1, 1)
    std = torch.tensor(preprocess.std).view(1, 3, 1, 1)
    return ImageSet((pixels - mean) / std, None, "synthetic", 0, [])


def load_train_folder(train_dir: Path, preprocess: PreprocessConfig, class_names: Sequence[str],
                      batch_size: int = 32) -> torch.utils.data.DataLoader:
    """A shuffled (seeded), flip-augmented loader over an ImageFolder for QAT, classes mapped to the model's."""
    from torchvision import datasets
    from torchvision.transforms import v2 as T

    tf = T.Compose([T.RandomHorizontalFlip(), preprocess.transform()])
    if not train_dir.is_dir():
        raise DotcomError(f"--train {train_dir}: not a directory")
    try:
        ds = datasets.ImageFolder(str(train_dir), transform=tf, loader=load_image)
    except (FileNotFoundError, OSError) as e:
        raise DotcomError(f"--train {train_dir}: {e} (expected {train_dir}/<class>/<image>)") from None
    index = {c: i for i, c in enumerate(class_names)}
    unknown = [c for c in ds.classes if c not in index]
    if unknown:
        raise DotcomError(f"{train_dir}: class folder(s) {', '.join(unknown[:5])} are not classes of the model")
    ds.target_transform = lambda t: index[ds.classes[t]]
    if len(ds) < 2:
        raise DotcomError(f"{train_dir}: QAT needs at least 2 training images")
    return torch.utils.data.DataLoader(ds, batch_size=min(batch_size, len(ds)), shuffle=True, drop_last=True,
                                       generator=torch.Generator().manual_seed(0))
