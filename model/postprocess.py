"""Post-processing of the dense heads: SSD box decoding + NMS, segmentation shares.

This is the reference the apps reimplement, so every step is written out:

1. **Decode** (torchvision's ``BoxCoder`` with SSD's weights ``(10, 10, 5, 5)``): for an
   anchor ``(x1, y1, x2, y2)`` with width ``wa``, height ``ha`` and centre
   ``(xa, ya)`` and a regression row ``(dx, dy, dw, dh)``::

       cx = dx / 10 * wa + xa          w = exp(min(dw / 5, log(1000/16))) * wa
       cy = dy / 10 * ha + ya          h = exp(min(dh / 5, log(1000/16))) * ha
       box = (cx - w/2, cy - h/2, cx + w/2, cy + h/2), clipped to the input

2. **Scores**: softmax over all classes; class 0 is background and never reported.
3. Per class: keep scores ``> score_thresh``, then at most ``topk_candidates`` best.
4. **NMS** per class (``torchvision.ops.batched_nms``, IoU ``nms_thresh``), then the
   ``detections_per_img`` best overall, sorted by score.

Defaults are torchvision's SSDLite320 ones (0.001, 0.55, 300, 300), which suit mAP;
an app showing boxes uses a higher ``score_thresh`` (``predict`` uses 0.3).
Boxes are in input pixels; :func:`boxes_to_image` maps them back through the
resize + center crop of :class:`~dotcom_mobile.model.preprocess.PreprocessConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

BOX_CODER_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
BBOX_XFORM_CLIP = math.log(1000.0 / 16)
SCORE_THRESH = 0.001
NMS_THRESH = 0.55
TOPK_CANDIDATES = 300
DETECTIONS_PER_IMG = 300


@dataclass
class Detections:
    """Detections of one image: ``boxes [N, 4]`` (x1, y1, x2, y2), ``scores [N]``, ``labels [N]``."""

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.scores.numel())


def decode_boxes(rel_codes: torch.Tensor, anchors: torch.Tensor,
                 weights: tuple[float, float, float, float] = BOX_CODER_WEIGHTS) -> torch.Tensor:
    """Regression ``[..., A, 4]`` + anchors ``[A, 4]`` (xyxy) -> boxes ``[..., A, 4]`` (xyxy)."""
    anchors = anchors.to(rel_codes.dtype)
    wa = anchors[:, 2] - anchors[:, 0]
    ha = anchors[:, 3] - anchors[:, 1]
    xa = anchors[:, 0] + 0.5 * wa
    ya = anchors[:, 1] + 0.5 * ha
    wx, wy, ww, wh = weights
    cx = rel_codes[..., 0] / wx * wa + xa
    cy = rel_codes[..., 1] / wy * ha + ya
    w = torch.exp(torch.clamp(rel_codes[..., 2] / ww, max=BBOX_XFORM_CLIP)) * wa
    h = torch.exp(torch.clamp(rel_codes[..., 3] / wh, max=BBOX_XFORM_CLIP)) * ha
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def postprocess_detections(
    box_regression: torch.Tensor,
    class_logits: torch.Tensor,
    anchors: torch.Tensor,
    image_size: tuple[int, int],
    *,
    score_thresh: float = SCORE_THRESH,
    nms_thresh: float = NMS_THRESH,
    topk_candidates: int = TOPK_CANDIDATES,
    detections_per_img: int = DETECTIONS_PER_IMG,
) -> list[Detections]:
    """Raw SSD outputs ``[B, A, 4]``, ``[B, A, C]`` -> one :class:`Detections` per image.

    ``image_size`` is the model input ``(height, width)``; boxes are clipped to it.
    """
    from torchvision.ops import batched_nms

    if box_regression.dim() == 2:
        box_regression, class_logits = box_regression[None], class_logits[None]
    if box_regression.shape[1] != anchors.shape[0] or class_logits.shape[1] != anchors.shape[0]:
        raise ValueError(
            f"{anchors.shape[0]} anchors but outputs for {box_regression.shape[1]}/{class_logits.shape[1]}: "
            "anchors must come from the same input size"
        )
    height, width = image_size
    results = []
    for reg, logits in zip(box_regression, class_logits):
        boxes = decode_boxes(reg, anchors)
        boxes = torch.stack((boxes[:, 0].clamp(0, width), boxes[:, 1].clamp(0, height),
                             boxes[:, 2].clamp(0, width), boxes[:, 3].clamp(0, height)), dim=1)
        scores = torch.softmax(logits, dim=-1)
        keep_boxes, keep_scores, keep_labels = [], [], []
        for label in range(1, scores.shape[1]):
            s = scores[:, label]
            idx = torch.nonzero(s > score_thresh).flatten()
            if idx.numel() > topk_candidates:
                idx = idx[s[idx].topk(topk_candidates).indices]
            keep_boxes.append(boxes[idx])
            keep_scores.append(s[idx])
            keep_labels.append(torch.full_like(idx, label))
        b, s, lab = torch.cat(keep_boxes), torch.cat(keep_scores), torch.cat(keep_labels)
        keep = batched_nms(b, s, lab, nms_thresh)[:detections_per_img]  # sorted by score
        results.append(Detections(b[keep], s[keep], lab[keep]))
    return results


def crop_geometry(image_size: tuple[int, int], preprocess) -> tuple[float, float, int, int]:
    """``(scale_x, scale_y, left, top)`` of PreprocessConfig's resize + center crop.

    ``image_size`` is the original ``(width, height)`` (PIL order). Mirrors torchvision:
    the shorter side goes to ``preprocess.resize``, the longer to ``int(resize * long / short)``,
    and the crop starts at ``round((resized - crop) / 2)``.
    """
    w, h = image_size
    r = preprocess.resize
    if w <= h:
        nw, nh = r, int(r * h / w)
    else:
        nw, nh = int(r * w / h), r
    ch, cw = preprocess.crop
    return nw / w, nh / h, int(round((nw - cw) / 2.0)), int(round((nh - ch) / 2.0))


def boxes_to_image(boxes: torch.Tensor, image_size: tuple[int, int], preprocess) -> torch.Tensor:
    """Boxes in model-input pixels -> pixels of the original image of ``(width, height)``."""
    sx, sy, left, top = crop_geometry(image_size, preprocess)
    w, h = image_size
    out = boxes.clone()
    out[:, 0::2] = ((boxes[:, 0::2] + left) / sx).clamp(0, w)
    out[:, 1::2] = ((boxes[:, 1::2] + top) / sy).clamp(0, h)
    return out


def class_shares(logits: torch.Tensor) -> torch.Tensor:
    """Segmentation logits ``[C, H, W]`` (or ``[1, C, H, W]``) -> share of pixels per class ``[C]``."""
    if logits.dim() == 4:
        logits = logits[0]
    pred = logits.argmax(0).flatten()
    return torch.bincount(pred, minlength=logits.shape[0]).double() / pred.numel()
