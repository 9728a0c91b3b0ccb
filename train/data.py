"""ImageFolder datasets, transforms and loaders for training and evaluation.

Layout: ``DIR/train/<class>/*`` and ``DIR/val/<class>/*``. The folder names are the
class names; their sorted order is the class index, recorded in every checkpoint so
quantize, export, eval and the apps agree on what logit 3 means.

Training uses timm's transform factory (RandomResizedCrop + flip, optional
RandAugment). Evaluation uses :meth:`PreprocessConfig.transform` - the same
definition predict, calibration and the export manifests use - so an accuracy measured
here is the accuracy of what ships.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dotcom_mobile.model import DotcomError, PreprocessConfig, load_image
from dotcom_mobile.model.preprocess import IMAGE_EXTENSIONS

SPLITS = ("train", "val")


def _class_dirs(split_dir: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(split_dir.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def _has_image(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.rglob("*"))


def check_split(root: str | Path, split: str) -> list[str]:
    """Validate ``root/split`` as an ImageFolder; return its sorted class names."""
    root = Path(root)
    if not root.is_dir():
        raise DotcomError(f"dataset folder {root} does not exist")
    d = root / split
    if not d.is_dir():
        raise DotcomError(f"{root} has no {split}/ folder (expected {root}/{split}/<class>/<image>)")
    classes = _class_dirs(d)
    if not classes:
        raise DotcomError(f"{d} has no class folders (expected {d}/<class>/<image>)")
    for name, folder in classes.items():
        if not _has_image(folder):
            raise DotcomError(
                f"class folder {folder} has no images ({', '.join(IMAGE_EXTENSIONS)}); remove it or add images"
            )
    return list(classes)


def check_image_folder(root: str | Path, splits: Sequence[str] = SPLITS) -> list[str]:
    """Validate a train/val ImageFolder: both splits, same classes, no empty class folder."""
    per_split = {s: check_split(root, s) for s in splits}
    first, *rest = splits
    for other in rest:
        a, b = set(per_split[first]), set(per_split[other])
        if a != b:
            only = sorted(a - b)
            missing_in, present_in = (other, first) if only else (first, other)
            only = only or sorted(b - a)
            names = ", ".join(only[:5]) + (f" and {len(only) - 5} more" if len(only) > 5 else "")
            raise DotcomError(
                f"class {names} is in {present_in}/ but not in {missing_in}/ "
                f"(both splits of {root} need the same class folders)"
            )
    return per_split[first]


class ImageFolderDataset(Dataset):
    """``root/<class>/*`` images with labels from ``class_names`` (by folder name).

    Unlike ``torchvision.datasets.ImageFolder`` the label order is given, so a val
    split or a checkpoint's classes define the indices; images are read with
    :func:`load_image` (EXIF orientation, alpha on white), like ``predict``.
    """

    def __init__(self, root: str | Path, class_names: Sequence[str], transform=None) -> None:
        self.root = Path(root)
        self.class_names = list(class_names)
        index = {c: i for i, c in enumerate(self.class_names)}
        self.samples: list[tuple[Path, int]] = []
        for name, folder in _class_dirs(self.root).items():
            if name not in index:
                raise DotcomError(
                    f"class folder {folder} is not one of the model's classes ({', '.join(self.class_names[:8])}"
                    f"{', ...' if len(self.class_names) > 8 else ''})"
                )
            files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            self.samples += [(p, index[name]) for p in files]
        self.targets = [t for _, t in self.samples]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, target = self.samples[i]
        img = load_image(path)
        return (self.transform(img) if self.transform is not None else img), target


class ShardSampler(Sampler[int]):
    """Every ``world``-th index from ``rank``: no padding, so summed counts are exact.

    ``DistributedSampler`` repeats samples to even out the shards, which would count
    some validation images twice.
    """

    def __init__(self, n: int, rank: int = 0, world: int = 1) -> None:
        self.indices = list(range(rank, n, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def train_transform(
    preprocess: PreprocessConfig,
    *,
    auto_augment: str | None = None,
    hflip: float = 0.5,
    scale: tuple[float, float] = (0.08, 1.0),
):
    """Training augmentation via timm: RandomResizedCrop (``scale`` of the area) + flip (+ RandAugment).

    ``scale`` (0.08, 1) is the ImageNet/paper default; the ``finetune`` recipe uses
    (0.5, 1), because at small inputs an 8% crop rarely still shows the object.
    """
    from timm.data import create_transform

    return create_transform(
        input_size=preprocess.input_size,
        is_training=True,
        scale=scale,
        hflip=hflip,
        color_jitter=None,  # the paper's recipe has none; RandAugment covers colour when asked
        auto_augment=auto_augment,
        interpolation=preprocess.interpolation,
        mean=preprocess.mean,
        std=preprocess.std,
    )


def eval_transform(preprocess: PreprocessConfig):
    """Resize + center crop + normalise, exactly as predict and the manifests do."""
    return preprocess.transform()


def manifest_transform(pre: dict[str, Any]):
    """The transform a manifest's ``preprocessing`` object describes (export/schemas)."""
    from torchvision.transforms import v2 as T

    interp = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC,
              "nearest": T.InterpolationMode.NEAREST}[pre.get("interpolation", "bilinear")]
    return T.Compose([
        T.PILToTensor(),
        T.Resize(int(pre["resize"]), interpolation=interp, antialias=True),
        T.CenterCrop([int(v) for v in pre["crop"]]),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(list(pre["mean"]), list(pre["std"])),
    ])


def read_manifest(artifact: str | Path) -> dict[str, Any]:
    """The manifest beside an artifact (``<stem>.json``), with one-line errors."""
    art = Path(artifact)
    if not art.exists():
        raise DotcomError(f"artifact {art}: no such file")
    path = art.with_suffix(".json")
    if not path.is_file():
        raise DotcomError(f"artifact {art} has no manifest {path.name} beside it (export writes one)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DotcomError(f"manifest {path} is not valid JSON: {e}") from None
    for key in ("preprocessing", "labels", "input"):
        if key not in manifest:
            raise DotcomError(f"manifest {path} has no {key!r} (not a dotcom-mobile manifest?)")
    return manifest


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    train: bool,
    workers: int = 0,
    rank: int = 0,
    world: int = 1,
    seed: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Training: a seeded ``DistributedSampler`` (also on one process, so the order of
    epoch ``e`` is a function of ``seed`` and ``e`` only and a resumed run sees the same
    batches) with ``drop_last`` (mixup needs even batches). Evaluation: :class:`ShardSampler`.
    Call ``loader.sampler.set_epoch(e)`` before each training epoch.
    """
    if train:
        from torch.utils.data.distributed import DistributedSampler

        sampler: Sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                              drop_last=True)
    else:
        sampler = ShardSampler(len(dataset), rank, world)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=train,
        # Training workers are re-created each epoch and seeded from the global RNG, which
        # the trainer re-seeds per epoch: augmentation then does not depend on history.
        persistent_workers=workers > 0 and not train,
    )
