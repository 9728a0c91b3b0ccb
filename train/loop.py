"""One training epoch and one evaluation pass, shared by ``train``, ``eval`` and QAT.

The loops know nothing about where the model came from: an eager DoTCoM, a DDP
wrapper, a ``prepare_qat_pt2e`` graph module or an ExecuTorch method wrapped in a
callable all go through the same code, so accuracy numbers are computed one way only.

Mode switching is the one subtle part. A graph module produced by ``torch.export``
(as QAT's ``prepare_qat_pt2e`` does) ignores ``.train()``/``.eval()``: BatchNorm and
dropout are baked into the graph, and torchao rewrites them with
``move_exported_model_to_train``/``_eval``. :func:`set_mode` picks the right call;
callers with their own needs pass ``set_mode=``.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable

import torch
from torch import nn

from dotcom_mobile.model.errors import DotcomError

__all__ = ["evaluate", "recalibrate_batchnorm", "set_mode", "train_one_epoch"]

ModeFn = Callable[[Any, bool], None]


def _is_exported_graph(model: Any) -> bool:
    """True for graph modules that came out of ``torch.export`` (``.module()``)."""
    if not isinstance(model, torch.fx.GraphModule):
        return False
    # Exported programs' modules carry node meta from export; symbolic_trace ones do not.
    return any("val" in n.meta or "nn_module_stack" in n.meta for n in model.graph.nodes)


def set_mode(model: Any, train: bool) -> None:
    """Put ``model`` in train or eval mode, correctly for exported (QAT) graphs too."""
    if not isinstance(model, nn.Module):
        return  # e.g. an ExecuTorch method wrapped in a function: it has no mode
    inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    if _is_exported_graph(inner):
        from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

        (move_exported_model_to_train if train else move_exported_model_to_eval)(inner)
        return
    model.train(train)


def _is_rank0() -> bool:
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or torch.distributed.get_rank() == 0


def _all_reduce_sum(values: list[float], device: str | torch.device) -> list[float]:
    """Sum scalars over ranks (no-op without an initialised process group)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return t.tolist()


def _current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def _autocast(device: torch.device, amp_dtype: torch.dtype | None):
    if amp_dtype is None:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=amp_dtype)


def _is_timm_scheduler(scheduler: Any) -> bool:
    return hasattr(scheduler, "step_update")


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: str | torch.device = "cpu",
    scheduler: Any = None,
    epoch: int = 0,
    step: int | None = None,
    scaler: torch.amp.GradScaler | None = None,
    ema: Any = None,
    mixup_fn: Callable | None = None,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    clip_grad: float | None = None,
    set_mode: ModeFn | None = None,
    progress: bool = True,
    log_every: int = 10,
    max_steps: int | None = None,
) -> dict[str, float]:
    """Train ``model`` for one pass over ``loader``.

    Scheduling: a timm scheduler (``CosineLRScheduler`` and friends) gets
    ``step_update(global_step)`` after every optimizer step and ``step(epoch + 1)`` at the
    end of the epoch, so the same call works for per-step (``t_in_epochs=False``) and
    per-epoch schedules. A ``torch.optim.lr_scheduler`` is stepped once per batch.
    ``step`` is the global step count before this epoch (default ``epoch * len(loader)``),
    which is what makes a resumed run continue on the same learning rate.

    With ``mixup_fn`` the targets become soft, so ``loss_fn`` must accept them (timm's
    ``SoftTargetCrossEntropy``). ``scaler`` (fp16 AMP) and ``amp_dtype`` are for CUDA.
    ``max_steps`` stops the epoch early (tests, smoke runs).

    Returns ``{"loss": mean loss over all ranks, "lr": lr after the last step,
    "images_per_s": throughput of this process, "steps": optimizer steps taken,
    "step": global step after the epoch}``.
    """
    device = torch.device(device)
    mode = set_mode or globals()["set_mode"]
    mode(model, True)
    if step is None:
        step = epoch * len(loader) if hasattr(loader, "__len__") else 0
    total = len(loader) if hasattr(loader, "__len__") else None
    if max_steps is not None and total is not None:
        total = min(total, max_steps)

    bar = None
    if progress and _is_rank0():
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"epoch {epoch}", unit="batch", leave=True, dynamic_ncols=True)

    loss_sum, seen, steps = 0.0, 0, 0
    start = time.perf_counter()
    for x, y in loader:
        if max_steps is not None and steps >= max_steps:
            break
        x = _to_device(x, device, channels_last)
        y = y.to(device, non_blocking=True)
        if mixup_fn is not None:
            x, y = mixup_fn(x, y)
        with _autocast(device, amp_dtype):
            out = model(x)
            loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if clip_grad:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if clip_grad:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
        step += 1
        steps += 1
        if ema is not None:
            ema.update(model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model, step=step)
        if scheduler is not None:
            if _is_timm_scheduler(scheduler):
                scheduler.step_update(num_updates=step)
            else:
                scheduler.step()
        n = x.shape[0]
        loss_sum = loss_sum + loss.detach().float() * n  # stays on the device: no sync per step
        seen += n
        if steps % max(1, log_every) == 0 or steps == total:
            mean = (loss_sum / seen).item()
            if not math.isfinite(mean):
                raise DotcomError(f"loss is {mean} at epoch {epoch}, step {step}: lower --lr or check the data")
            if bar is not None:
                elapsed = time.perf_counter() - start
                bar.set_postfix(loss=f"{mean:.4f}", lr=f"{_current_lr(optimizer):.2e}",
                                img_s=f"{seen / max(elapsed, 1e-9):.1f}", refresh=False)
        if bar is not None:
            bar.update(1)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    if bar is not None:
        bar.close()
    if scheduler is not None and _is_timm_scheduler(scheduler):
        scheduler.step(epoch + 1)
    loss_sum = float(loss_sum)
    if not math.isfinite(loss_sum):
        raise DotcomError(f"loss is {loss_sum} in epoch {epoch}: lower --lr or check the data")
    loss_total, count = _all_reduce_sum([loss_sum, float(seen)], device)
    return {
        "loss": loss_total / max(count, 1.0),
        "lr": _current_lr(optimizer),
        "images_per_s": seen / max(elapsed, 1e-9),
        "steps": steps,
        "step": step,
    }


@torch.no_grad()
def evaluate(
    model: Callable[[torch.Tensor], torch.Tensor],
    loader: Iterable,
    *,
    device: str | torch.device = "cpu",
    progress: bool = False,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    set_mode: ModeFn | None = None,
    desc: str = "eval",
) -> dict[str, float]:
    """Top-1, top-5 and mean cross-entropy of ``model`` over ``loader``.

    ``model`` is any callable from an NCHW batch to logits: an ``nn.Module`` (put in
    eval mode first, exported graphs included) or a wrapped ExecuTorch method. Under
    DDP the counts are summed over ranks, so every rank returns the numbers of the
    whole split (use a non-padding sampler, see ``train.data``). With fewer than five
    classes, top-5 is top-``num_classes`` (i.e. 1.0).

    Returns ``{"top1", "top5", "loss", "images_per_s", "count"}``; accuracies are
    fractions in 0..1.
    """
    device = torch.device(device)
    (set_mode or globals()["set_mode"])(model, False)
    bar = None
    if progress and _is_rank0():
        from tqdm.auto import tqdm

        bar = tqdm(total=len(loader) if hasattr(loader, "__len__") else None, desc=desc, unit="batch",
                   leave=False, dynamic_ncols=True)
    correct1 = correct5 = loss_sum = 0.0
    count = 0
    compute = 0.0
    for x, y in loader:
        x = _to_device(x, device, channels_last)
        y = y.to(device, non_blocking=True)
        t0 = time.perf_counter()
        with _autocast(device, amp_dtype):
            logits = model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        compute += time.perf_counter() - t0
        logits = logits.float()
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hits = top.eq(y[:, None])
        correct1 += hits[:, 0].sum().item()
        correct5 += hits.any(dim=1).sum().item()
        count += y.shape[0]
        if bar is not None:
            bar.update(1)
            bar.set_postfix(top1=f"{correct1 / max(count, 1):.3f}", refresh=False)
    if bar is not None:
        bar.close()
    local_count = count
    correct1, correct5, loss_sum, count = _all_reduce_sum([correct1, correct5, loss_sum, float(count)], device)
    count = int(count)
    return {
        "top1": correct1 / count if count else float("nan"),
        "top5": correct5 / count if count else float("nan"),
        "loss": loss_sum / count if count else float("nan"),
        # Forward passes only (no decoding): what the model costs, not the JPEG reader.
        "images_per_s": local_count / compute if compute > 0 else 0.0,
        "count": count,
    }


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    loader: Iterable,
    *,
    device: str | torch.device = "cpu",
    max_batches: int | None = None,
    channels_last: bool = False,
) -> None:
    """Re-estimate BatchNorm running statistics with the final weights.

    Running means/variances are an exponential average over the whole run, so after a
    short run (or a few QAT epochs) they lag behind the weights and eval accuracy drops
    far below train accuracy. One pass with ``momentum=None`` (a cumulative average)
    over training images, without augmentation, replaces them with the statistics the
    current weights actually produce. Restores each layer's momentum and the eval mode.

    ``loader`` must shuffle across classes: the statistics are an average of per-batch
    ones, and batches drawn from a class-sorted folder miss the between-class variance.
    """
    device = torch.device(device)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    try:
        for i, (x, _) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            model(_to_device(x, device, channels_last))
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
        model.eval()
