"""Tables and plots from latency reports: terminal, Markdown, HTML, PNG.

One row per report, grouped by device, backend and quantization, with the paper's
latency and top-1 for the same variant beside ours (the paper does not name its
device, so the comparison is a sanity check, not a target). Every number comes from
the report itself; nothing is recomputed except ratios (GMAC/s = MACs / p50).
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any, Iterable, Sequence

from .latency import headline_ms, is_summary_only, write_bytes_atomic

# From the DoTCoM README (ImageNet-1k, 256x256; latency on an unnamed phone).
PAPER: dict[str, dict[str, float]] = {
    "dotcom_tiny": {"latency_ms": 23, "top1": 74.0, "params_m": 1.7, "gflops": 0.4},
    "dotcom_small": {"latency_ms": 38, "top1": 77.5, "params_m": 2.8, "gflops": 0.8},
    "dotcom_base": {"latency_ms": 51, "top1": 80.1, "params_m": 5.8, "gflops": 1.6},
    "dotcom_large": {"latency_ms": 93, "top1": 82.4, "params_m": 11.1, "gflops": 3.3},
}

COLUMNS = ("device", "cpu kind", "backend", "quant", "artifact", "runner", "thr", "p50 ms", "p90 ms", "spread", "load ms",
           "peak MB", "delegated", "GMAC/s", "top-1", "paper ms", "paper top-1")
# The bench command's terminal table: one device, so fewer columns.
BENCH_COLUMNS = ("artifact", "runner", "thr", "cpu kind", "p50 ms", "p90 ms", "spread", "load ms", "peak MB", "delegated", "GMAC/s")


def device_label(report: dict[str, Any]) -> str:
    d = report["device"]
    parts = [d.get("model"), d.get("cpu")]
    label = " ".join(str(p) for p in parts if p) or "unknown device"
    return f"{label} ({d.get('platform')}, {d.get('cores') or '?'} cores)"


def runner_label(report: dict[str, Any]) -> str:
    """``python``, ``native``, ...; ``python, in turn`` for a report timed in turn with others."""
    from .latency import timed_in_turn

    return report["runtime"]["runner"] + (", in turn" if timed_in_turn(report) else "")


def cpu_kind(report: dict[str, Any]) -> str:
    """The device's ``cpu_kind`` (``x86-avx2``, ``arm64-i8mm``, ...), ``-`` for reports that predate it."""
    return report["device"].get("cpu_kind") or "-"


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def gmacs(report: dict[str, Any]) -> float | None:
    """Achieved GMAC/s at the median latency, when the artifact's MACs are known."""
    macs = report["artifact"].get("macs")
    p50 = headline_ms(report) if report.get("status") == "ok" else None
    return macs / (p50 / 1e3) / 1e9 if macs and p50 else None


def spread(report: dict[str, Any]) -> float | None:
    """Coefficient of variation (stddev / mean) in percent: the run's noise at a glance."""
    res = report.get("results") or {}
    if not res or is_summary_only(report) or not res.get("mean_ms") or res.get("stddev_ms") is None:
        return None
    return 100.0 * res["stddev_ms"] / res["mean_ms"]


def delegated(report: dict[str, Any]) -> str:
    d = report.get("delegation") or {}
    if not d:
        return "-"
    parts = []
    if d.get("fraction") is not None:
        parts.append(f"{100 * d['fraction']:.0f}%")
    if d.get("partitions") is not None:
        parts.append(f"{d['partitions']}p")
    return " ".join(parts) or "-"


def _accuracy_for(report: dict[str, Any], accuracy: Sequence[dict[str, Any]]) -> float | None:
    """top-1 (percent) of the same artifact, else of the same model/backend/quantization."""
    a = report["artifact"]
    for rec in accuracy:
        if rec.get("artifact") and Path(str(rec["artifact"])).name == a["name"]:
            return _pct(rec["top1"])
    for rec in accuracy:
        if (rec.get("model"), rec.get("backend"), rec.get("quantization")) == (a.get("model"), a.get("backend"), a.get("quantization")):
            return _pct(rec["top1"])
    return None


def _pct(x: float) -> float:
    return 100.0 * x if x <= 1.0 else float(x)


def row(report: dict[str, Any], accuracy: Sequence[dict[str, Any]] = ()) -> dict[str, str]:
    """One table row (strings) for a report."""
    a, res = report["artifact"], report.get("results") or {}
    approx = "~" if is_summary_only(report) else ""
    paper = PAPER.get(a.get("model") or "", {})
    top1 = _accuracy_for(report, accuracy)
    sp = spread(report)
    ok = report["status"] == "ok"
    peak = res.get("peak_memory_bytes")
    return {
        "device": device_label(report),
        "cpu kind": cpu_kind(report),
        "backend": a.get("backend", "?"),
        "quant": a.get("quantization", "?"),
        "artifact": a["name"],
        "runner": runner_label(report),
        "thr": str(report["device"].get("threads") if report["device"].get("threads") is not None else "-"),
        "p50 ms": approx + _fmt(headline_ms(report)) if ok else "error",
        "p90 ms": _fmt(res.get("p90_ms")) if ok and not approx else "-",
        "spread": f"±{sp:.1f}%" if sp is not None else "-",
        "load ms": _fmt(res.get("load_ms"), 1),
        "peak MB": _peak(res) if peak else "-",
        "delegated": delegated(report),
        "GMAC/s": _fmt(gmacs(report), 1),
        "top-1": _fmt(top1, 1),
        "paper ms": _fmt(paper.get("latency_ms"), 0) if paper else "-",
        "paper top-1": _fmt(paper.get("top1"), 1) if paper else "-",
        "_error": report.get("error") or "",
    }


def _peak(res: dict[str, Any]) -> str:
    """Peak MB, with the model's share ``(+N)`` when the RSS before loading is known.

    A Python runner's process peak is mostly the interpreter and libraries (~0.8 GB
    with torch imported); the ``+N`` is what loading and running the artifact added.
    A minibench PSS increase is marked ``+`` alone.
    """
    peak, before = res["peak_memory_bytes"], res.get("memory_before_load_bytes")
    if res.get("memory_scope") == "increase":
        return f"+{peak / 2**20:.0f}"
    if before is not None:
        return f"{peak / 2**20:.0f} (+{max(0, peak - before) / 2**20:.0f})"
    return f"{peak / 2**20:.0f}"


def sort_key(report: dict[str, Any]) -> tuple:
    a = report["artifact"]
    return (device_label(report), cpu_kind(report), a.get("model") or "", a.get("backend") or "", a.get("quantization") or "",
            report["runtime"]["runner"], report["device"].get("threads") or 0, a["name"])


def rows(reports: Iterable[dict[str, Any]], accuracy: Sequence[dict[str, Any]] = ()) -> list[dict[str, str]]:
    return [row(r, accuracy) for r in sorted(reports, key=sort_key)]


def text_table(reports: Iterable[dict[str, Any]], columns: Sequence[str] = BENCH_COLUMNS) -> str:
    """Aligned plain-text table for the terminal; errors listed under it."""
    rs = rows(reports)
    widths = {c: max([len(c)] + [len(r[c]) for r in rs]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rs]
    errors = [f"  {r['artifact']} ({r['runner']}, t{r['thr']}): {r['_error']}" for r in rs if r["_error"]]
    if errors:
        lines += ["", "errors:"] + errors
    return "\n".join(lines)


def _used_columns(rs: list[dict[str, str]]) -> list[str]:
    """Drop the top-1 column when no accuracy file was given."""
    return [c for c in COLUMNS if c != "top-1" or any(r["top-1"] != "-" for r in rs)]


def markdown_table(reports: Iterable[dict[str, Any]], accuracy: Sequence[dict[str, Any]] = ()) -> str:
    rs = rows(reports, accuracy)
    cols = _used_columns(rs)
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    prev = None
    for r in rs:
        group = (r["device"], r["cpu kind"], r["backend"], r["quant"])
        cells = [r[c] if c not in ("device", "cpu kind", "backend", "quant") or group != prev else "" for c in cols]
        out.append("| " + " | ".join(cells) + " |")
        prev = group
    return "\n".join(out)


def paper_table() -> str:
    out = ["| model | params (M) | FLOPs (G) | top-1 (%) | latency (ms) |", "|---|---|---|---|---|"]
    for name, p in PAPER.items():
        out.append(f"| {name} | {p['params_m']} | {p['gflops']} | {p['top1']} | {p['latency_ms']} |")
    return "\n".join(out)


NOTES = (
    "cpu kind: the int8 instruction sets of the CPU (x86-avx2: no int8 dot product; x86-avx512-vnni, "
    "x86-amx, arm64-dotprod, arm64-i8mm: with one), which decide whether int8 beats fp32; `-`: not recorded. "
    "p50/p90: percentiles of every timed iteration (linear interpolation); spread: stddev/mean; "
    "delegated: share of graph nodes in delegates and number of partitions (p); GMAC/s: MACs of one "
    "inference / p50. `~`: converted minibench result without per-iteration samples (its trimmed mean "
    "shown; no p90 or spread exist). peak MB: peak resident memory of a process that ran only that "
    "benchmark, `(+N)`: what loading and running the artifact added to it; `+N` alone: minibench's PSS "
    "increase. "
    "Paper columns: the DoTCoM README's latency (device not stated) and ImageNet top-1."
)


def markdown(reports: Sequence[dict[str, Any]], accuracy: Sequence[dict[str, Any]] = (), plots: Sequence[str] = ()) -> str:
    parts = ["# DoTCoM latency report", "", markdown_table(reports, accuracy), "", NOTES, "",
             "## Paper figures", "", paper_table(), ""]
    for p in plots:
        parts += [f"![{Path(p).stem}]({Path(p).name})", ""]
    return "\n".join(parts)


def html_page(reports: Sequence[dict[str, Any]], accuracy: Sequence[dict[str, Any]] = (), plots: Sequence[str] = ()) -> str:
    rs = rows(reports, accuracy)
    cols = _used_columns(rs)
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = "\n".join("<tr>" + "".join(f"<td>{esc(r[c])}</td>" for c in cols) + "</tr>" for r in rs)
    paper = "\n".join(f"<tr><td>{esc(n)}</td><td>{p['params_m']}</td><td>{p['gflops']}</td><td>{p['top1']}</td>"
                      f"<td>{p['latency_ms']}</td></tr>" for n, p in PAPER.items())
    imgs = "\n".join(f'<p><img src="{esc(Path(p).name)}" alt="{esc(Path(p).stem)}"></p>' for p in plots)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>DoTCoM latency report</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}</style>
</head><body>
<h1>DoTCoM latency report</h1>
<table><tr>{head}</tr>
{body}
</table>
<p>{esc(NOTES)}</p>
<h2>Paper figures</h2>
<table><tr><th>model</th><th>params (M)</th><th>FLOPs (G)</th><th>top-1 (%)</th><th>latency (ms)</th></tr>
{paper}
</table>
{imgs}
</body></html>
"""


# --------------------------------------------------------------------------- plots


def _label(report: dict[str, Any]) -> str:
    a = report["artifact"]
    return f"{Path(a['name']).stem} [{report['runtime']['runner']} t{report['device'].get('threads')}]"


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    write_bytes_atomic(path, buf.getvalue())
    return path


def plot_latency_vs_params(reports: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """p50 against parameter count for our runs, the paper's four variants as stars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, p in PAPER.items():
        ax.scatter(p["params_m"], p["latency_ms"], marker="*", s=160, color="black", zorder=3)
        ax.annotate(f"{name.split('_')[1]} (paper)", (p["params_m"], p["latency_ms"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    series: dict[str, list[tuple[float, float]]] = {}
    for r in reports:
        a, res = r["artifact"], r.get("results") or {}
        params = a.get("params") or (PAPER.get(a.get("model") or "", {}).get("params_m", 0) * 1e6)
        if r["status"] != "ok" or not params or headline_ms(r) is None:
            continue
        key = f"{a.get('backend')} {a.get('quantization')} [{r['runtime']['runner']} t{r['device'].get('threads')}]"
        series.setdefault(key, []).append((params / 1e6, headline_ms(r)))
    for key, pts in sorted(series.items()):
        xs, ys = zip(*sorted(pts))
        ax.plot(xs, ys, marker="o", linestyle="-" if len(xs) > 1 else "none", label=key)
    ys = [y for pts in series.values() for _, y in pts] + [p["latency_ms"] for p in PAPER.values()]
    if max(ys) / max(min(ys), 1e-9) > 20:  # eager next to int8: a linear axis flattens the interesting part
        ax.set_yscale("log")
    ax.set_xlabel("parameters (M)")
    ax.set_ylabel("p50 latency (ms)")
    ax.set_title("Latency vs parameters (ours: p50; stars: paper)")
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=7, loc="best")
    path = _save(fig, Path(path))
    plt.close(fig)
    return path


def plot_latency_distribution(reports: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Box plot of every timed iteration per report (converted summaries have none)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [(r, r["results"]["latencies_ms"]) for r in sorted(reports, key=sort_key)
            if r["status"] == "ok" and (r.get("results") or {}).get("latencies_ms")]
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(3, len(data)) + 1.2))
    if data:
        ax.boxplot([d for _, d in data], vert=False, showfliers=True, flierprops={"markersize": 3})
        ax.set_yticks(range(1, len(data) + 1), [_label(r) for r, _ in data], fontsize=8)
        lo, hi = min(min(d) for _, d in data), max(max(d) for _, d in data)
        if hi / max(lo, 1e-9) > 20:
            ax.set_xscale("log")
    else:
        ax.text(0.5, 0.5, "no per-iteration samples", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("latency per iteration (ms)")
    ax.set_title("Latency distribution per artifact")
    ax.grid(axis="x", alpha=0.3)
    path = _save(fig, Path(path))
    plt.close(fig)
    return path


def write_report(reports: Sequence[dict[str, Any]], out: str | Path, accuracy: Sequence[dict[str, Any]] = ()) -> list[Path]:
    """Write ``out`` (.md or .html) and its two PNGs beside it; returns the written paths."""
    out = Path(out)
    stem = out.with_suffix("")
    plots = [plot_latency_vs_params(reports, f"{stem}_latency_vs_params.png"),
             plot_latency_distribution(reports, f"{stem}_latency_distribution.png")]
    text = html_page(reports, accuracy, plots) if out.suffix.lower() in (".html", ".htm") else markdown(reports, accuracy, plots)
    write_bytes_atomic(out, text.encode())
    return [out, *plots]
