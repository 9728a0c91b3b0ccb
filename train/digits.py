"""A small *real* image dataset with no download: scikit-learn's handwritten digits.

``sklearn.datasets.load_digits`` ships 1,797 scans of handwritten digits (8x8 grey
levels 0..16, 10 classes, UCI "Optical Recognition of Handwritten Digits") inside the
package. scikit-learn is already a dependency of ExecuTorch, so this costs nothing to
install. :func:`make_digits_dataset` writes them as an ImageFolder of RGB PNGs,
upsampled to ``size`` (bicubic: the strokes stay smooth rather than blocky), with a
seeded, stratified train/val split.

It is the project's stand-in for "a user's small dataset": real, noisy, varied
images that a wrong training recipe or a lossy int8 scheme visibly fails on, where
the generated shapes (:mod:`.synthetic`) are too easy to tell anything apart.
"""

from __future__ import annotations

from pathlib import Path

CLASSES = tuple(str(d) for d in range(10))


def make_digits_dataset(root: str | Path, size: int = 64, val_fraction: float = 0.2, seed: int = 0) -> Path:
    """Write ``root/train/<digit>/*.png`` and ``root/val/<digit>/*.png``; returns ``root``.

    The split is stratified: each class contributes ``round(val_fraction * n)`` of
    its images to val, chosen by a ``numpy`` generator seeded with ``seed``, so the
    same arguments always give the same files (1,438 train / 359 val by default).
    """
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    if not 0.0 < val_fraction < 1.0:
        raise ValueError("val_fraction must be in (0, 1)")
    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().clip(0, 255).astype(np.uint8)
    rng = np.random.default_rng(seed)
    root = Path(root)
    for label in CLASSES:
        index = np.flatnonzero(digits.target == int(label))
        index = index[rng.permutation(len(index))]
        n_val = int(round(val_fraction * len(index)))
        for split, part in (("val", index[:n_val]), ("train", index[n_val:])):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in part:
                im = Image.fromarray(images[i], mode="L").resize((size, size), Image.BICUBIC).convert("RGB")
                im.save(folder / f"digit{label}_{i:04d}.png")
    return root
