"""DoTCoM registered with timm: ``timm.create_model("dotcom_tiny")`` after importing
:mod:`dotcom_mobile.model`. The pretrained_cfg carries the paper's preprocessing
(3x256x256, crop_pct 256/288, ImageNet mean/std); no weights are hosted, so
``pretrained=True`` needs ``pretrained_cfg_overlay=dict(file=...)`` pointing at a
checkpoint (ours or the authors'), which goes through :func:`checkpoint_filter_fn`.
"""

from __future__ import annotations

from typing import Any

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from .checkpoint import checkpoint_filter_fn
from .dotcom import VARIANTS, DoTCoM
from .registry import DEFAULT_PREPROCESS


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "url": "",
        "num_classes": 1000,
        "pool_size": (8, 8),
        "first_conv": "stem.0",
        "classifier": "head",
        "license": "apache-2.0",
        **DEFAULT_PREPROCESS.timm_cfg(),
        **kwargs,
    }


default_cfgs = generate_default_cfgs({f"{name}.untrained": _cfg() for name in VARIANTS})


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> DoTCoM:
    return build_model_with_cfg(
        DoTCoM,
        variant,
        pretrained,
        cfg=VARIANTS[variant],
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(1, 2, 3, 4, 5), feature_cls="getter"),
        **kwargs,
    )


@register_model
def dotcom_tiny(pretrained: bool = False, **kwargs: Any) -> DoTCoM:
    """DoTCoM-Tiny: 1.73M params, 0.46 GMACs at 224."""
    return _create("dotcom_tiny", pretrained, **kwargs)


@register_model
def dotcom_small(pretrained: bool = False, **kwargs: Any) -> DoTCoM:
    """DoTCoM-Small: 2.87M params, 0.88 GMACs at 224."""
    return _create("dotcom_small", pretrained, **kwargs)


@register_model
def dotcom_base(pretrained: bool = False, **kwargs: Any) -> DoTCoM:
    """DoTCoM-Base: 5.90M params, 1.61 GMACs at 224."""
    return _create("dotcom_base", pretrained, **kwargs)


@register_model
def dotcom_large(pretrained: bool = False, **kwargs: Any) -> DoTCoM:
    """DoTCoM-Large: 11.17M params, 3.41 GMACs at 224."""
    return _create("dotcom_large", pretrained, **kwargs)
