"""A small learnable image dataset drawn with Pillow: coloured shapes on noise.

Used by the tests, the demo (calibration images when the user has none) and anyone
who wants to see the pipeline work end to end without downloading ImageNet. A
DoTCoM-Tiny learns it to well above chance in a few epochs on a CPU.
"""

from __future__ import annotations

import random
from pathlib import Path

SHAPES = ("circle", "square", "triangle", "cross")
PALETTE = {"circle": (220, 40, 40), "square": (40, 200, 60), "triangle": (50, 70, 230), "cross": (235, 220, 40)}


def _draw(shape: str, size: int, rng: random.Random):
    from PIL import Image, ImageDraw

    grey = rng.randint(60, 190)
    bg = tuple(max(0, min(255, grey + rng.randint(-25, 25))) for _ in range(3))
    im = Image.new("RGB", (size, size), bg)
    px = im.load()
    for _ in range(size * size // 16):  # speckle noise so the task is not trivial
        x, y = rng.randrange(size), rng.randrange(size)
        px[x, y] = tuple(rng.randint(0, 255) for _ in range(3))
    draw = ImageDraw.Draw(im)
    # Each shape has its own hue (jittered): colour and form both carry the class.
    fg = tuple(max(0, min(255, c + rng.randint(-40, 40))) for c in PALETTE[shape])
    r = rng.randint(size // 6, size // 3)
    cx, cy = rng.randint(r, size - r), rng.randint(r, size - r)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    else:
        w = max(2, r // 3)
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fg)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fg)
    return im


def make_shapes_dataset(
    root: str | Path,
    num_classes: int = 4,
    train_per_class: int = 96,
    val_per_class: int = 32,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write ``root/train/<class>/*.png`` and ``root/val/<class>/*.png``; returns root."""
    if not 1 <= num_classes <= len(SHAPES):
        raise ValueError(f"num_classes must be in 1..{len(SHAPES)}")
    root = Path(root)
    rng = random.Random(seed)
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        for shape in SHAPES[:num_classes]:
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                _draw(shape, size, rng).save(folder / f"{shape}_{i:04d}.png")
    return root
