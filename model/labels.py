"""Class names that ship with torchvision's weight metadata (no download needed)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def imagenet_labels() -> tuple[str, ...]:
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


@lru_cache(maxsize=None)
def coco_labels() -> tuple[str, ...]:
    """The 91 COCO category slots used by torchvision detectors (index 0 is background)."""
    from torchvision.models.detection import SSDLite320_MobileNet_V3_Large_Weights

    return tuple(SSDLite320_MobileNet_V3_Large_Weights.COCO_V1.meta["categories"])


@lru_cache(maxsize=None)
def voc_labels() -> tuple[str, ...]:
    """The 21 PASCAL VOC classes (index 0 is background)."""
    from torchvision.models.segmentation import DeepLabV3_ResNet50_Weights

    return tuple(DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1.meta["categories"])


def default_labels(task: str, num_classes: int) -> list[str]:
    """Labels for a model without its own class names: the dataset's if the count fits."""
    table = {"classify": imagenet_labels, "detect": coco_labels, "segment": voc_labels}[task]()
    if len(table) == num_classes:
        return list(table)
    return [f"class_{i}" for i in range(num_classes)]
