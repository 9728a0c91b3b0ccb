"""The one preprocessing definition of DoTCoM, shared by every step.

predict, calibration, eval, the export manifests and both apps read it from here (or
from a manifest written from here), so an image is turned into a tensor the same way
everywhere: resize the shorter side to ``round(crop / crop_pct)``, center crop, scale to
0..1, normalise with ImageNet mean/std.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from .errors import DotcomError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class PreprocessConfig:
    """Input and preprocessing of a model; the paper: resize 288, center crop 256."""

    input_size: tuple[int, int, int] = (3, 256, 256)
    crop_pct: float = 256 / 288
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def crop(self) -> tuple[int, int]:
        return self.input_size[1], self.input_size[2]

    @property
    def resize(self) -> int:
        """Shorter-side length before the center crop (288 for a 256 crop)."""
        return int(math.floor(min(self.crop) / self.crop_pct + 0.5))

    def with_size(self, size: int) -> "PreprocessConfig":
        """Same recipe at another square input size (crop_pct kept)."""
        return PreprocessConfig((3, size, size), self.crop_pct, self.interpolation, self.mean, self.std)

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``preprocessing`` object (see export/schemas)."""
        return {
            "resize": self.resize,
            "crop": list(self.crop),
            "interpolation": self.interpolation,
            "mean": list(self.mean),
            "std": list(self.std),
            "crop_pct": self.crop_pct,
        }

    def to_state(self) -> dict[str, Any]:
        """Plain-data form stored in checkpoints (loadable with weights_only=True)."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> "PreprocessConfig":
        return cls(tuple(d["input_size"]), float(d["crop_pct"]), str(d["interpolation"]), tuple(d["mean"]), tuple(d["std"]))

    def timm_cfg(self) -> dict[str, Any]:
        """pretrained_cfg-style keys (timm.data.resolve_data_config understands them)."""
        return {
            "input_size": self.input_size,
            "crop_pct": self.crop_pct,
            "crop_mode": "center",
            "interpolation": self.interpolation,
            "mean": self.mean,
            "std": self.std,
        }

    def transform(self):
        """torchvision eval transform: PIL RGB image -> normalised CHW float tensor."""
        from torchvision.transforms import v2 as T

        interp = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC,
                  "nearest": T.InterpolationMode.NEAREST}[self.interpolation]
        return T.Compose([
            T.PILToTensor(),
            T.Resize(self.resize, interpolation=interp, antialias=True),
            T.CenterCrop(self.crop),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(self.mean, self.std),
            _Contiguous(),  # v2 ops may return a channels-last view; runtimes expect NCHW memory
        ])


class _Contiguous(torch.nn.Module):
    """Transform step: a contiguous NCHW copy (picklable, unlike a lambda, for DataLoader workers)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous()


def _to_8bit(im):
    """A 16-bit or float greyscale image as 8-bit ``L``, its own min..max stretched to 0..255.

    PIL's ``convert("RGB")`` clips such images at 255, so a 16-bit scan came out white.
    """
    import numpy as np
    from PIL import Image

    a = np.asarray(im, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
    return Image.fromarray(a.round().astype(np.uint8), mode="L")


def load_image(path: str | Path):
    """Open an image as RGB with EXIF orientation applied.

    Grayscale, palette, CMYK and alpha images are converted to RGB (alpha composited
    on white). Raises :class:`DotcomError` for a directory, a missing file or a file
    that is not a readable image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if p.is_dir():
        raise DotcomError(f"{p} is a directory, not an image")
    if not p.exists():
        raise DotcomError(f"{p}: no such file")
    try:
        with Image.open(p) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGB", im.size, (255, 255, 255))
                bg.paste(im, mask=im.getchannel("A"))
                return bg
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit / float scans: stretch to 8 bit
                im = _to_8bit(im)
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DotcomError(f"{p}: not a readable image ({type(e).__name__})") from None


def find_images(folder: str | Path) -> list[Path]:
    """Image files below ``folder`` (recursive, sorted, by extension)."""
    root = Path(folder)
    if not root.is_dir():
        raise DotcomError(f"{root}: not a directory")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
