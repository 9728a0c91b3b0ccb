"""``dotcom-mobile export``: the click command (heavy imports happen inside it)."""

from __future__ import annotations

import click

TARGET_NAMES = ("xnnpack", "coreml", "vulkan", "mlpackage", "qnn", "all")


@click.command(context_settings={"max_content_width": 100})
@click.option("--model", "model_name", metavar="NAME",
              help="Registry name (dotcom_tiny, dotcom_small, dotcom_base, dotcom_large). Optional with a project "
                   "--checkpoint or a --quantized .pt2, which say which model they hold.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), metavar="PATH",
              help="Weights to export: a project checkpoint (also sets classes, labels, preprocessing) or the "
                   "authors' state dict. Without it the model has random weights.")
@click.option("--quantized", type=click.Path(dir_okay=False), metavar="FILE.pt2",
              help="An int8 model from `dotcom-mobile quantize`; exported as <model>_<backend>_q8. Its backend must "
                   "match --target (an XNNPACK-quantized model lowers to xnnpack only).")
@click.option("--target", default="xnnpack", show_default=True, metavar="TARGET",
              help="xnnpack (CPU), coreml (Core ML delegate in a .pte), vulkan (Android GPU), mlpackage (standalone "
                   "Core ML), qnn (Qualcomm HTP, needs QNN_SDK_ROOT), or all (every available target).")
@click.option("--task", type=click.Choice(["classify", "detect", "segment"]), default="classify", show_default=True,
              help="Classifier, SSDLite detector (outputs box_regression, class_logits) or DeepLabv3 segmenter.")
@click.option("--input-size", type=int, metavar="N",
              help="Square input side in pixels, a multiple of 32 (default: the model's, 256 for classifiers).")
@click.option("--fp16", is_flag=True, help="Vulkan: run in fp16 (file token fp16). Core ML targets are always fp16.")
@click.option("--compute-unit", type=click.Choice(["ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY"]), default="ALL",
              show_default=True, help="Core ML compute units (coreml and mlpackage).")
@click.option("--bundled", is_flag=True,
              help="Also write <stem>.bpte: the program with reference inputs and expected outputs, for checking "
                   "correctness on the device (the native runner's --verify).")
@click.option("--etrecord", is_flag=True,
              help="Also write <stem>.etrecord for per-operator profiling with the ExecuTorch Inspector.")
@click.option("--out", "out_dir", default=".", show_default=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Output folder (created if missing).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
@click.option("--quiet", is_flag=True, hidden=True)  # the old spelling of --no-progress
def export(model_name, checkpoint, quantized, target, task, input_size, fp16, compute_unit, bundled, etrecord,
           out_dir, progress, quiet) -> None:
    """Lower a DoTCoM model to an ExecuTorch .pte (or a Core ML .mlpackage) with a manifest.

    Writes <model>_<backend>_<quant>.pte (quant: fp32, fp16, q8) and <same stem>.json beside it:
    input shape, preprocessing, labels, backend, delegation summary, sha256 and tool versions,
    which the apps and `dotcom-mobile bench` read. Files appear only when complete: an existing
    artifact is replaced only by a finished one.

    \b
    Examples:
      dotcom-mobile export --model dotcom_tiny --target xnnpack
      dotcom-mobile export --quantized out/dotcom_tiny_xnnpack_q8.pt2 --target xnnpack --bundled
      dotcom-mobile export --checkpoint runs/best.pth --target all --out artifacts/
      dotcom-mobile export --model dotcom_small --target coreml --compute-unit CPU_AND_NE
      dotcom-mobile export --model dotcom_tiny --target vulkan --fp16 --input-size 224
      dotcom-mobile export --model dotcom_base --task detect --target xnnpack
    """
    from .api import export_model

    results = export_model(
        model_name, checkpoint=checkpoint, quantized=quantized, target=target, task=task, input_size=input_size,
        fp16=fp16, out_dir=out_dir, bundled=bundled, etrecord=etrecord, compute_unit=compute_unit,
        progress=progress and not quiet)
    click.echo(summary_table(results))


def summary_table(results) -> str:
    """target | file | size | delegated | partitions | time, one row per artifact."""
    rows = [("target", "artifact", "size", "delegated", "partitions", "time")]
    for r in results:
        m, d = r.manifest, r.manifest.get("delegation")
        size = m["artifact"]["size_bytes"] / 2**20
        rows.append((
            f"{m['backend']} {m['quantization']}", str(r.path), f"{size:.2f} MiB",
            f"{d['fraction']:.1%} ({d['delegated_nodes']}/{d['total_nodes']})" if d else "whole model",
            str(d["partitions"]) if d else "-", f"{r.seconds:.1f} s"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in results:
        left = (r.manifest.get("delegation") or {}).get("non_delegated_ops")
        if left:
            ops = ", ".join(f"{op} x{n}" for op, n in left.items())
            lines.append(f"{r.path.name}: not delegated: {ops}")
    return "\n".join(lines)
