"""``dotcom-mobile quantize`` and ``dotcom-mobile inspect activations``.

Only click and the standard library at module level: ``--help`` must not import torch.
"""

from __future__ import annotations

import click

BACKEND_CHOICES = ("xnnpack", "coreml")


@click.command("quantize", context_settings={"max_content_width": 100})
@click.option("--model", "model_name", default=None, metavar="NAME",
              help="DoTCoM variant: dotcom_tiny, dotcom_small, dotcom_base, dotcom_large (or tiny, small, ...) "
                   "[default: the one --checkpoint holds].")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None, metavar="PATH",
              help="Weights: a dotcom-mobile checkpoint (classes, labels and input size come with it) or the authors' .pth.")
@click.option("--backend", default="xnnpack", show_default=True, metavar="xnnpack|coreml",
              help="Whose quantizer annotates the graph: XNNPACKQuantizer (Android/iOS CPU) or CoreMLQuantizer (iOS 17+).")
@click.option("--calib", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Calibration images (searched recursively; jpg, png, webp, bmp). Without it: synthetic inputs, with a warning.")
@click.option("--num-calib", default=256, show_default=True, metavar="N",
              help="At most N calibration images (a seeded random subset of larger folders).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", show_default=True, metavar="DIR",
              help="Writes <model>_<backend>_q8.pt2, quant_report.json and quant_report.md here.")
@click.option("--input-size", type=int, default=None, metavar="N",
              help="Square input side (multiple of 32). Default: the checkpoint's, else 256.")
@click.option("--scheme", type=click.Choice(["auto", "static", "dynamic"]), default=None,
              help="[default: auto] static: activation ranges calibrated once, everything int8 (the fast scheme; Sapphire Rapids, "
                   "256: Tiny 0.7x, Large 0.5x fp32). dynamic (XNNPACK): the activations into linear and dense conv "
                   "layers quantized at run time per token/pixel/image, SiLU, depthwise convs and attention fp32 "
                   "(the accurate scheme: trained Tiny 36-40 dB where static gives 26-32 dB; Tiny ~1.0x, Large 0.6x "
                   "fp32). auto: static, unless its SQNR is under --min-sqnr and dynamic measures better.")
@click.option("--dynamic", is_flag=True, help="Same as --scheme dynamic.")
@click.option("--min-sqnr", "min_sqnr_db", type=float, default=30.0, show_default=True, metavar="DB",
              help="--scheme auto: the output SQNR under which static int8 gives way to dynamic.")
@click.option("--keep-fp32", type=int, default=0, show_default=True, metavar="N",
              help="Leave the N layers that lose the most SQNR in fp32 (mixed precision); the report shows before/after.")
@click.option("--keep-fp32-modules", multiple=True, metavar="PATTERN",
              help="Leave modules matching PATTERN (fnmatch on module paths, e.g. 'stages.4.2.*') in fp32. Repeatable.")
@click.option("--keep-fp32-from", "keep_fp32_from", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Also leave the modules listed in FILE (a JSON list of patterns, e.g. the layers where int8 is slower: "
                   "python -m dotcom_mobile.perf.layer_speed --slow-out FILE) in fp32.")
@click.option("--qat-epochs", type=int, default=0, show_default=True, metavar="N",
              help="Quantization-aware fine-tuning for N epochs after PTQ (needs --train).")
@click.option("--train", "train_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="QAT training images as an ImageFolder: DIR/<class>/<image>.")
@click.option("--val", "val_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Labelled ImageFolder for fp32 vs int8 top-1/top-5 and SQNR (else measured on the calibration images).")
@click.option("--observer", type=click.Choice(["mse", "histogram"]), default="mse", show_default=True,
              help="XNNPACK PTQ activation ranges: mse = least expected rounding+clipping error; "
                   "histogram = PT2E's stock search.")
@click.option("--per-layer/--no-per-layer", default=True, show_default=True,
              help="Per-layer SQNR analysis in the report (the numeric debugger; skip it to save time).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
def quantize(**kwargs) -> None:
    """int8 quantization with torchao PT2E and a quality report.

    Quantizes the deployment form of a DoTCoM model with the backend's own quantizer
    (post-training, or quantization-aware with --qat-epochs), saves it with
    torch.export.save as <model>_<backend>_q8.pt2 for `dotcom-mobile export
    --quantized`, and writes quant_report.json/.md: output SQNR and top-1 agreement
    with fp32, accuracy of both with --val, and the layers that lose the most SQNR
    (torchao numeric debugger) by their module path. --scheme auto (the default) keeps
    static int8, the fast scheme, unless its SQNR is under --min-sqnr; then it takes
    dynamic int8, the accurate one, if that measures better, and says so.

    \b
    Examples:
      dotcom-mobile quantize --checkpoint runs/best.pth --calib images/ --out q/
      dotcom-mobile quantize --model dotcom_tiny --checkpoint tiny.pth --calib images/ --out q/
      dotcom-mobile quantize --model tiny --checkpoint tiny.pth --backend coreml --calib images/
      dotcom-mobile quantize --model tiny --checkpoint tiny.pth --calib data/train --val data/val --keep-fp32 3
      dotcom-mobile quantize --checkpoint runs/best.pth --calib images/ --val data/val --scheme dynamic
      dotcom-mobile quantize --model tiny --checkpoint tiny.pth --calib data/train --keep-fp32-from slow.json
      dotcom-mobile quantize --model tiny --checkpoint tiny.pth --calib data/train \\
          --qat-epochs 2 --train data/train --val data/val
    """
    from dotcom_mobile.model import DotcomError

    from . import numerics
    from .api import quantize_model

    backend = kwargs.pop("backend")
    if backend not in BACKEND_CHOICES:
        raise DotcomError(f"unknown backend {backend!r} for quantize (choose from {', '.join(BACKEND_CHOICES)})")
    scheme, dynamic = kwargs.pop("scheme"), kwargs.pop("dynamic")
    if dynamic and scheme not in (None, "dynamic"):
        raise DotcomError(f"--dynamic contradicts --scheme {scheme}")
    kwargs["scheme"] = "dynamic" if dynamic else (scheme or "auto")
    kwargs["keep_fp32_modules"] = tuple(kwargs["keep_fp32_modules"]) + patterns_from(kwargs.pop("keep_fp32_from"))
    name = _model_for(kwargs.pop("model_name"), kwargs["checkpoint"], "quantize")
    result = quantize_model(name, backend=backend, **kwargs)
    r = result.report
    ev = r["evaluation"]
    d = r["quantization_details"]
    click.echo(f"{d['method'].upper()} {'dynamic' if d['dynamic'] else 'static'} int8 {r['model']} for {r['backend']}: "
               f"{numerics.summary_line(ev)}")
    if d.get("scheme_choice"):
        click.echo(f"Scheme (--scheme auto): {d['scheme_choice']['reason']}")
    worst = r["per_layer"]["largest_drop"][:3] if r["per_layer"] else []
    if worst:
        click.echo("Layers losing the most SQNR: " + ", ".join(f"{w['layer']} ({w['drop_db']:.1f} dB)" for w in worst))
    hint = accuracy_hint(r)
    if hint:
        click.echo(hint)
    click.echo(f"Saved {result.pt2_path}")
    click.echo(f"Report {result.report_md_path}")


def accuracy_hint(report: dict) -> str | None:
    """One line pointing at ``--scheme dynamic`` when a static XNNPACK PTQ lands under ``auto``'s SQNR floor."""
    from .api import AUTO_FLOOR_DB

    d, sqnr = report["quantization_details"], report["evaluation"].get("sqnr_db")
    if report["backend"] != "xnnpack" or d.get("dynamic") or d.get("method") != "ptq" or sqnr is None \
            or sqnr >= AUTO_FLOOR_DB or (d.get("scheme_choice") or {}).get("dynamic"):  # auto tried dynamic
        return None
    return (f"Hint: {sqnr:.1f} dB is under {AUTO_FLOOR_DB:g} dB. --scheme dynamic quantizes activations at run "
            "time (per token/pixel/image): far more accurate, less fast (quantize/README.md).")


def patterns_from(path: str | None) -> tuple[str, ...]:
    """The module patterns of a ``--keep-fp32-from`` file: a JSON list of strings (empty without a file)."""
    import json

    from dotcom_mobile.model import DotcomError

    if path is None:
        return ()
    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except FileNotFoundError:
        raise DotcomError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DotcomError(f"{path}: not a JSON list of module patterns ({type(e).__name__})") from None
    if not isinstance(data, list) or not all(isinstance(p, str) and p.strip() for p in data):
        raise DotcomError(f"{path}: expected a JSON list of module patterns such as [\"stages.1.0.qg.conv1\"]")
    return tuple(data)


def _model_for(model_name: str | None, checkpoint: str | None, command: str) -> str:
    """--model, checked against what --checkpoint holds, or read from it (model/introspect.py)."""
    from dotcom_mobile.model.introspect import checkpoint_facts, choose_model

    facts = checkpoint_facts(checkpoint) if checkpoint is not None else None
    return choose_model(model_name, facts, needs=f"{command} needs --model NAME or a --checkpoint that records it")


@click.group("inspect", context_settings={"max_content_width": 100})
def inspect() -> None:
    """Look inside a model before quantizing it.

    \b
    Examples:
      dotcom-mobile inspect activations --model tiny --checkpoint tiny.pth --images val/ --out act.png
    """


@inspect.command("activations")
@click.option("--model", "model_name", default=None, metavar="NAME",
              help="DoTCoM variant (dotcom_tiny, ...) [default: the one --checkpoint holds].")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None, metavar="PATH", help="Weights to load.")
@click.option("--images", "images_dir", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Images to run (searched recursively).")
@click.option("--out", "out_png", required=True, type=click.Path(dir_okay=False), metavar="PNG",
              help="Where to write the figure (PNG).")
@click.option("--num-images", default=64, show_default=True, metavar="N", help="At most N images.")
@click.option("--input-size", type=int, default=None, metavar="N", help="Square input side (multiple of 32).")
def activations(model_name, checkpoint, images_dir, out_png, num_images, input_size) -> None:
    """Histograms of DoT-block activations before and after Co-Bias (the paper's Fig. 3).

    For every DoT block: the inputs and outputs of Co-Bias 1 (local features entering
    the transformer) and Co-Bias 2 (concatenated global+local features), with the
    int8 clipping range a MinMax observer would choose overlaid. A distribution far
    off zero or with long tails wastes int8 levels; Co-Bias is meant to centre it.
    """
    from .activations import plot_activations

    out = plot_activations(_model_for(model_name, checkpoint, "inspect activations"), checkpoint=checkpoint, images=images_dir, out=out_png,
                           num_images=num_images, input_size=input_size)
    click.echo(f"Saved {out}")
