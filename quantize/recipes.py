"""How an int8 model is made: the recipe that :func:`~.api.quantize_model` and in-memory callers share.

    to_deploy(model, backend) -> capture (torch.export, dynamic batch) -> .module()
      -> ptq: prepare_pt2e -> calibrate -> SiLU-scored ranges -> convert_pt2e -> the backend's finish
      -> qat: prepare_qat_pt2e -> calibrate -> train.loop epochs -> convert_pt2e -> finish
      -> export_batch1: the program a ``.pt2`` holds and export lowers

``quantize_model`` (:mod:`.api`) adds files, evaluation and reports around these steps.
Callers that already hold a model and a few calibration tensors (the delegation
measurements, the benchmarks, tests) call :func:`quantize_module` /
:func:`quantized_program`, which string together the very same functions, so a figure
measured on their graph is a figure of what users export.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch

from dotcom_mobile.model.deploy import to_deploy
from dotcom_mobile.model.tracing import export_deploy, lean_provenance
from dotcom_mobile.train.loop import set_mode, train_one_epoch

from .backends import finish_convert, make_quantizer
from .data import ImageSet
from .numerics import skip_filter
from .observers import mark_silu_inputs

__all__ = ["DEFAULT_KEEP_FP32", "DEFAULT_KEEP_FP32_LAYERS", "default_skip", "capture", "calibrate", "ptq", "qat",
           "export_batch1", "quantize_module", "quantized_program"]

# Module types each backend keeps in fp32 by default. The LayerNorm rewrite of the
# XNNPACK deployment form computes a variance and its rsqrt: through int8, a variance
# near zero is rounded to a handful of levels and rsqrt amplifies the error. On the
# trained shapes DoTCoM-Tiny (64x64, 64 calibration images) it costs nothing either way
# (24.6 dB kept in fp32, 24.8 dB in int8; top-1 97.7% both), but real images give
# LayerNorm a far wider variance range, so fp32 is the safe default. The ops stay
# delegated to XNNPACK in fp32 (linear, sub, mul, rsqrt have fp32 kernels).
DEFAULT_KEEP_FP32: dict[str, tuple[str, ...]] = {"xnnpack": ("LinearLayerNorm",), "coreml": ()}
# Layers (as numerics.layer_of names them) each backend keeps in fp32 by default. The
# classifier's output is the model's output: quantizing the logits to int8 only to
# dequantize them again adds noise and saves nothing (the head is ~0.1% of Tiny's MACs).
# Measured on the shipped fixtures (64x64): digits 31.39 -> 32.07 dB, shapes 26.17 -> 26.21 dB
# (quantize/README.md).
DEFAULT_KEEP_FP32_LAYERS: dict[str, tuple[str, ...]] = {"xnnpack": ("head",), "coreml": ()}
BATCH = 16  # images per calibration batch (the observers' ranges depend on how images are batched)
# Images per evaluation batch: the int8 eager module runs its quantize/dequantize ops as
# separate tensor passes, and at 16 images of 256x256 those tensors outgrow the caches and
# get fresh pages from the allocator on every call: batches of 4 ran 2.3x faster (Tiny
# 256, 16 images, AMD EPYC Zen 4: 4.7 s -> 2.0 s int8, 0.95 -> 0.57 s fp32). Each image's
# logits are computed on their own; the batch size changes only float rounding.
EVAL_BATCH = 4


def _progress(items, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, total=total, unit="batch", leave=False, dynamic_ncols=True)


def default_skip(backend: str, patterns: Sequence[str] = (), layers: Sequence[str] = ()):
    """The skip filter of ``backend``'s defaults plus the user's ``patterns`` and ``layers`` (numerics.skip_filter)."""
    return skip_filter(tuple(patterns), tuple(layers) + DEFAULT_KEEP_FP32_LAYERS.get(backend, ()),
                       DEFAULT_KEEP_FP32.get(backend, ()))


def capture(model: torch.nn.Module, input_size: Sequence[int]) -> torch.fx.GraphModule:
    """``torch.export`` of the deployment form, batch dimension dynamic.

    A dynamic batch lets calibration, evaluation and QAT run batched; the saved
    program is re-exported at batch 1, the shape the apps use.
    """
    with lean_provenance():
        return export_deploy(model, torch.randn(2, *input_size), dynamic_batch=True).module()


def export_batch1(converted: torch.fx.GraphModule, input_size: Sequence[int]) -> torch.export.ExportedProgram:
    """The converted module re-exported at batch 1: the program a ``.pt2`` holds and export lowers."""
    with lean_provenance():
        return export_deploy(converted, torch.zeros(1, *input_size))


def calibrate(prepared: torch.fx.GraphModule, data: ImageSet, progress: bool = False) -> None:
    """Run ``data`` through a prepared (observed) graph in batches, without gradients."""
    n = (len(data) + BATCH - 1) // BATCH
    with torch.no_grad():
        for x in _progress(data.batches(BATCH), progress, "calibrating", n):
            prepared(x)


def ptq(reference: torch.fx.GraphModule, quantizer, calib: ImageSet, progress: bool = False) -> torch.fx.GraphModule:
    """prepare_pt2e -> calibrate -> convert_pt2e (+ the backend's finish) on a copy of ``reference``."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    with lean_provenance():
        prepared = prepare_pt2e(copy.deepcopy(reference), quantizer)
        calibrate(prepared, calib, progress)
        mark_silu_inputs(prepared)
        return finish_convert(convert_pt2e(prepared), quantizer)


def qat(
    reference: torch.fx.GraphModule,
    quantizer,
    loader,
    epochs: int,
    init: ImageSet,
    progress: bool,
    lr: float = 1e-4,
) -> tuple[torch.fx.GraphModule, list[dict]]:
    """prepare_qat_pt2e -> a short fine-tune -> convert_pt2e.

    Observers start from a calibration pass (so the first steps do not train against
    arbitrary ranges); for the last epoch the observers are frozen, so the converted
    model uses the ranges the weights were tuned for. The epochs are the training
    room's own :func:`~dotcom_mobile.train.loop.train_one_epoch` (the one dependency of
    quantize on train). The deployment form has its BatchNorms folded, so QAT tunes the
    folded weights the phone runs.
    """
    from torchao.quantization.pt2e import disable_observer
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

    with lean_provenance():
        prepared = prepare_qat_pt2e(copy.deepcopy(reference), quantizer)
    set_mode(prepared, False)
    calibrate(prepared, init, progress)
    params = [p for p in prepared.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    steps = max(1, epochs * len(loader))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=lr * 0.01)
    history = []
    for epoch in range(epochs):
        freeze = epochs > 1 and epoch == epochs - 1
        if freeze:
            prepared.apply(disable_observer)
        # Frozen epoch: BatchNorm in eval (running statistics) while the weights train.
        mode = (lambda m, train: set_mode(m, False)) if freeze else None
        stats = train_one_epoch(prepared, loader, optimizer, loss_fn=torch.nn.functional.cross_entropy,
                                scheduler=scheduler, epoch=epoch, progress=progress, set_mode=mode)
        history.append({"epoch": epoch, "loss": round(stats["loss"], 5), "lr": stats["lr"],
                        "frozen_observers": freeze})
    set_mode(prepared, False)
    with lean_provenance():
        return finish_convert(convert_pt2e(prepared), quantizer), history


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
    observer: str = "mse",
) -> torch.fx.GraphModule:
    """PTQ of ``model``'s deployment form for ``backend``, calibrated on ``calib``.

    Returns the converted (``convert_pt2e``) graph module, with a dynamic batch
    dimension as ``quantize_model`` builds it. ``calib`` must already be preprocessed
    as the deployed model sees its inputs; its spatial size is the export size.
    ``keep_fp32_modules`` adds module-path patterns to the backend's default fp32 layers
    (:data:`DEFAULT_KEEP_FP32`, :data:`DEFAULT_KEEP_FP32_LAYERS`).
    """
    inputs = _stack(calib)
    reference = capture(to_deploy(model, backend), tuple(inputs.shape[1:]))
    quantizer = make_quantizer(backend, skip=default_skip(backend, keep_fp32_modules), observer=observer)
    return ptq(reference, quantizer, ImageSet(inputs, source="in memory"), progress)


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
