"""Activation histograms around Co-Bias, with the int8 range an observer would pick.

The paper's Fig. 3 shows why Co-Bias exists: convolution and transformer features
have different statistics, and a learned per-channel bias shifts them towards each
other. For int8 the same picture answers a practical question: how much of the
per-tensor int8 range does each tensor use, and how far do outliers stretch it?
Forward hooks on every DoT block's ``co_bias1``/``co_bias2`` record their inputs and
outputs on the training form (Co-Bias 2 is folded away in the deployment form).
"""

from __future__ import annotations

from pathlib import Path

import torch

from dotcom_mobile.model import DotcomError, check_input_size, create_model
from dotcom_mobile.model.dot_block import DoTBlock

from .data import load_image_folder

MAX_SAMPLES = 200_000  # values kept per tensor for the histogram


def _int8_range(t: torch.Tensor) -> tuple[float, float]:
    """The clipping range of a per-tensor affine int8 MinMax observer fed ``t``."""
    from torchao.quantization.pt2e import MinMaxObserver

    obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_affine, quant_min=-128, quant_max=127)
    obs(t)
    scale, zp = obs.calculate_qparams()
    s, z = float(scale), int(zp)
    return (-128 - z) * s, (127 - z) * s


@torch.no_grad()
def collect(model: torch.nn.Module, inputs: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """{block path: {"co_bias1 in": t, "co_bias1 out": t, ...}} over ``inputs``."""
    records: dict[str, dict[str, list[torch.Tensor]]] = {}
    hooks = []
    for path, block in model.named_modules():
        if not isinstance(block, DoTBlock):
            continue
        for which in ("co_bias1", "co_bias2"):
            def hook(_m, args, out, path=path, which=which):
                rec = records.setdefault(path, {})
                rec.setdefault(f"{which} in", []).append(args[0].detach().flatten())
                rec.setdefault(f"{which} out", []).append(out.detach().flatten())
            hooks.append(getattr(block, which).register_forward_hook(hook))
    if not hooks:
        raise DotcomError("the model has no DoT blocks to inspect")
    try:
        for i in range(0, len(inputs), 16):
            model(inputs[i: i + 16])
    finally:
        for h in hooks:
            h.remove()
    return {p: {k: torch.cat(v) for k, v in rec.items()} for p, rec in records.items()}


def plot_activations(
    model_name: str,
    *,
    checkpoint: str | Path | None = None,
    images: str | Path,
    out: str | Path,
    num_images: int = 64,
    input_size: int | None = None,
) -> Path:
    """Write the histogram figure to ``out`` (PNG, written atomically); returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise DotcomError(f"--out {out}: the figure is written as PNG (use a .png name)")
    model = create_model(model_name, checkpoint=checkpoint)
    pre = model.dotcom_meta["preprocess"]
    if input_size is not None:
        pre = pre.with_size(input_size)
    check_input_size(pre.input_size[1], pre.input_size[2])
    data = load_image_folder(images, pre, num_images)
    stats = collect(model, data.inputs)

    g = torch.Generator().manual_seed(0)
    rows = len(stats)
    fig, axes = plt.subplots(rows, 2, figsize=(11, 2.8 * rows), squeeze=False)
    for r, (path, rec) in enumerate(stats.items()):
        for c, which in enumerate(("co_bias1", "co_bias2")):
            ax = axes[r][c]
            for kind, color in (("in", "tab:blue"), ("out", "tab:orange")):
                t = rec[f"{which} {kind}"]
                lo, hi = _int8_range(t)
                if t.numel() > MAX_SAMPLES:
                    t = t[torch.randint(t.numel(), (MAX_SAMPLES,), generator=g)]
                label = f"{'before' if kind == 'in' else 'after'} (mean {t.mean():.2f}, std {t.std():.2f})"
                ax.hist(t.numpy(), bins=120, alpha=0.55, color=color, label=label, density=True)
                for x in (lo, hi):
                    ax.axvline(x, color=color, linestyle="--", linewidth=1)
            ax.set_title(f"{path}.{which}  (dashed: int8 range)", fontsize=9)
            ax.legend(fontsize=7)
            ax.tick_params(labelsize=7)
    fig.suptitle(f"{model.dotcom_meta['model']}: DoT-block activations before/after Co-Bias "
                 f"({len(data)} images)", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=110)
        tmp.replace(out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out
