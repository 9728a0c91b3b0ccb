"""``curves.png``: loss and top-1 per epoch, the picture a user checks during a run.

Drawn with matplotlib's Agg canvas on a private ``Figure`` (no pyplot: no global state,
no display needed, safe in a training process) and written atomically, so a viewer that
reloads the file mid-run never sees half a PNG.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Mapping, Sequence

Row = Mapping[str, float | str]


def read_log(path: str | Path) -> list[dict[str, float]]:
    """The rows of a ``log.csv`` as floats (empty cells are skipped)."""
    with Path(path).open(newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(f)]


def plot_curves(runs: Mapping[str, Sequence[Row]], path: str | Path, title: str = "",
                num_classes: int | None = None) -> Path:
    """Loss (train and val) and val top-1 per epoch of one or more runs, side by side.

    ``runs`` maps a label to its rows (``epoch``, ``train_loss``, ``val_loss``, ``top1``
    as a fraction); with one unlabelled run (``{"": rows}``) the legend says train/val only.
    With ``num_classes`` a dotted line marks chance: a run stuck there is the first thing
    to see.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, acc_ax = fig.subplots(1, 2)
    colors = [f"C{i}" for i in range(10)]
    for (label, rows), color in zip(runs.items(), colors * 10):
        rows = [r for r in rows if "epoch" in r]
        epochs = [float(r["epoch"]) for r in rows]
        prefix = f"{label} " if label else ""

        def series(key: str) -> list[float]:
            return [float(r.get(key, float("nan"))) for r in rows]

        loss_ax.plot(epochs, series("train_loss"), "--", color=color, marker=".", label=f"{prefix}train")
        loss_ax.plot(epochs, series("val_loss"), "-", color=color, marker="o", label=f"{prefix}val")
        acc_ax.plot(epochs, [100 * v for v in series("top1")], "-", color=color, marker="o",
                    label=f"{prefix}val top-1")
    if num_classes:
        acc_ax.axhline(100 / num_classes, color="grey", linestyle=":", label="chance")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="%", title="val top-1", ylim=(0, 100))
    last = max((float(r["epoch"]) for rows in runs.values() for r in rows if "epoch" in r), default=1.0)
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        ax.set_xlim(0.5, last + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if title:
        fig.suptitle(title)

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    try:
        fig.savefig(tmp, format="png")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
