"""The int8 recipe of :func:`~dotcom_mobile.quantize.api.quantize_model`, for a module in memory.

``quantize_model`` reads a checkpoint and an image folder, evaluates, analyses every
layer and writes a ``.pt2`` with reports. Callers that already hold a model and a few
calibration tensors (the export room's delegation measurements, tests) need only the
middle of that flow. They must get *the same* int8 graph the command would write, or a
figure measured on it says nothing about what users export; so this module has no
recipe of its own: it strings together the very functions ``quantize_model`` calls
(deployment form, ``capture``, the backend's quantizer with its default fp32 layers,
``ptq``, the batch-1 re-export).
"""

from __future__ import annotations

from typing import Sequence

import torch

from dotcom_mobile.model.deploy import to_deploy

from .api import DEFAULT_KEEP_FP32, capture, export_batch1, ptq
from .backends import make_quantizer
from .data import ImageSet
from .numerics import skip_filter

__all__ = ["quantize_module", "quantized_program"]


def _stack(calib: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Calibration inputs as one ``[N, 3, H, W]`` tensor (a list of ``[1, 3, H, W]`` is fine)."""
    x = calib if isinstance(calib, torch.Tensor) else torch.cat([t.reshape(-1, *t.shape[-3:]) for t in calib])
    if x.dim() != 4 or x.shape[0] == 0:
        raise ValueError(f"calibration inputs must be [N, 3, H, W] with N >= 1, got {tuple(x.shape)}")
    return x


def quantize_module(
    model: torch.nn.Module,
    calib: torch.Tensor | Sequence[torch.Tensor],
    *,
    backend: str = "xnnpack",
    keep_fp32_modules: Sequence[str] = (),
    progress: bool = False,
) -> torch.fx.GraphModule:
    """PTQ of ``model``'s deployment form for ``backend``, calibrated on ``calib``.

    Returns the converted (``convert_pt2e``) graph module, with a dynamic batch
    dimension as ``quantize_model`` builds it. ``calib`` must already be preprocessed
    as the deployed model sees its inputs; its spatial size is the export size.
    ``keep_fp32_modules`` adds module-path patterns to the backend's default fp32 layers
    (:data:`~dotcom_mobile.quantize.api.DEFAULT_KEEP_FP32`).
    """
    inputs = _stack(calib)
    reference = capture(to_deploy(model, backend), tuple(inputs.shape[1:]))
    skip = skip_filter(tuple(keep_fp32_modules), (), DEFAULT_KEEP_FP32.get(backend, ()))
    return ptq(reference, make_quantizer(backend, skip=skip), ImageSet(inputs, source="in memory"), progress)


def quantized_program(
    model: torch.nn.Module,
    calib: torch.Tensor | Sequence[torch.Tensor],
    *,
    backend: str = "xnnpack",
    keep_fp32_modules: Sequence[str] = (),
    progress: bool = False,
) -> torch.export.ExportedProgram:
    """:func:`quantize_module`, re-exported at batch 1: the program a ``.pt2`` holds and export lowers."""
    inputs = _stack(calib)
    converted = quantize_module(model, inputs, backend=backend, keep_fp32_modules=keep_fp32_modules,
                                progress=progress)
    return export_batch1(converted, inputs.shape[1:])
