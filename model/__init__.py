"""DoTCoM networks: the four variants, detection and segmentation heads, checkpoints.

Public API::

    from dotcom_mobile.model import create_model, list_models
    model = create_model("dotcom_tiny", checkpoint="weights.pth")   # eval mode
"""

from .checkpoint import checkpoint_filter_fn, read_checkpoint, remap_reference_key
from .dotcom import STRIDE, VARIANTS, DoTCoM, DoTCoMConfig, check_input_size
from .errors import DotcomError
from .preprocess import PreprocessConfig, find_images, load_image
from .registry import DEFAULT_CLASSES, TASKS, create_model, list_models, resolve_model_name, save_checkpoint

try:  # registers dotcom_* with timm.create_model
    from . import timm_models as _timm_models  # noqa: F401
except ImportError:  # pragma: no cover - timm is a declared dependency
    pass

__all__ = [
    "DEFAULT_CLASSES", "STRIDE", "TASKS", "VARIANTS", "DoTCoM", "DoTCoMConfig", "DotcomError", "PreprocessConfig",
    "check_input_size", "checkpoint_filter_fn", "create_model", "find_images", "list_models", "load_image",
    "read_checkpoint", "remap_reference_key", "resolve_model_name", "save_checkpoint",
]
