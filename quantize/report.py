"""``quant_report.md``: the JSON report as a page a person reads before shipping int8."""

from __future__ import annotations

from typing import Any

from .numerics import agreement_informative


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _eval_rows(label: str, e: dict[str, Any] | None) -> list[str]:
    if not e:
        return []
    agreement = _pct(e["top1_agreement"]) if agreement_informative(e) else "n/a *"
    row = f"| {label} | {e['sqnr_db']:.2f} | {agreement} |"
    if "fp32_top1" in e:
        row += f" {_pct(e['fp32_top1'])} | {_pct(e['int8_top1'])} | {_pct(e['fp32_top5'])} | {_pct(e['int8_top5'])} |"
    else:
        row += " - | - | - | - |"
    return [row]


def _layers_table(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| layer | type | ops | SQNR dB | entering dB | drop dB |", "|---|---|---|---:|---:|---:|"]
    for r in rows:
        out.append(f"| `{r['layer']}` | {r['type']} | {', '.join(r['ops'][:4])} | {r['sqnr_db']:.1f} | "
                   f"{r['sqnr_in_db']:.1f} | {r['drop_db']:.1f} |")
    return out


def render_markdown(report: dict[str, Any]) -> str:
    d = report["quantization_details"]
    cal = report["calibration"]
    ev = report["evaluation"]
    lines = [
        f"# Quantization report: {report['model']} for {report['backend']} ({d['method'].upper()}, int8)",
        "",
    ]
    for w in report.get("warnings", []):
        lines += [f"> **WARNING:** {w}", ""]
    lines += [
        f"- Quantizer: `{d['quantizer']}`",
        f"- Scheme: {d['scheme']}",
        f"- Input: {'x'.join(str(v) for v in report['input_size'])}",
        f"- Calibration: {cal['images']} images from `{cal['source']}`"
        + (f" ({cal['skipped']} unreadable files skipped)" if cal["skipped"] else ""),
        f"- Kept in fp32: {', '.join(f'`{k}`' for k in d['kept_fp32']) or 'nothing'}",
    ]
    if d.get("scheme_choice"):
        lines.append(f"- Scheme chosen by `--scheme auto`: {d['scheme_choice']['reason']}")
    if "artifact" in report:
        a = report["artifact"]
        lines.append(f"- Artifact: `{a['file']}` ({a['size_bytes'] / 1e6:.2f} MB, sha256 {a['sha256'][:12]}...)")
    lines += [
        "",
        f"## Output quality ({ev['images']} {ev['data']} images)",
        "",
        "| model | SQNR dB | top-1 agreement | fp32 top-1 | int8 top-1 | fp32 top-5 | int8 top-5 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    mixed, qat = report.get("mixed_precision"), report.get("qat")
    if mixed:
        lines += _eval_rows("all int8", mixed["before"])
        lines += _eval_rows("mixed precision (PTQ)", mixed["after"])
    if qat:
        if not mixed:
            lines += _eval_rows("PTQ", qat["ptq"])
        lines += _eval_rows(f"QAT ({qat['epochs']} epochs)", qat["qat"])
    if not mixed and not qat:
        lines += _eval_rows("PTQ", ev)
    lines += [
        "",
        "SQNR: 10 log10(|fp32|^2 / |fp32 - int8|^2) over the logits; 20 dB or more is usually safe,",
        "below 15 dB check the accuracy. Agreement: same top-1 class as fp32.",
        "",
    ]
    if not agreement_informative(ev):
        lines += ["\\* fp32 predicts the same class for every image (untrained weights?): agreement then hinges on",
                  "one near-tie and is all or nothing, so it is not shown. The SQNR still measures int8 noise.", ""]
    if qat:
        lines += ["QAT fine-tunes the weights, so its SQNR and agreement measure how far the model moved from",
                  "the fp32 checkpoint, not quantization noise: judge QAT by accuracy. The per-layer tables",
                  "below are from PTQ.", ""]
    if mixed:
        kept = mixed["kept_layers"] + mixed["keep_fp32_modules"]
        lines += [f"Mixed precision kept in fp32: {', '.join(f'`{k}`' for k in kept)}.", ""]
    pl = report["per_layer"]
    if pl is None:
        lines += ["Per-layer analysis skipped (`per_layer=False`).", ""]
    else:
        lines += _per_layer_section(pl)
    if qat:
        lines += ["## QAT", "", "| epoch | loss | lr | observers frozen |", "|---:|---:|---:|---|"]
        lines += [f"| {h['epoch']} | {h['loss']:.4f} | {h['lr']:.2e} | {h['frozen_observers']} |" for h in qat["history"]]
        lines.append("")
    return "\n".join(lines)


def _per_layer_section(pl: dict) -> list[str]:
    """The two per-layer tables: what each layer costs, and where the SQNR is lowest."""
    return [
        f"## Layers that lose the most SQNR ({pl['images']} images)",
        "",
        "`drop dB` is what the layer itself costs (SQNR entering minus SQNR leaving); keep the top",
        "ones in fp32 with `--keep-fp32 N` or `--keep-fp32-modules PATTERN`.",
        "",
        *_layers_table(pl["largest_drop"]),
        "",
        "## Lowest SQNR (cumulative, from the numeric debugger)",
        "",
        *_layers_table(pl["worst_sqnr"]),
        "",
    ]
