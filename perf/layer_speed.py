"""Per-layer fp32 vs int8 time from ExecuTorch ETDumps: the layers where int8 does not pay.

Runs an fp32 and an int8 ``.pte`` of the same model with ETDump profiling on, in
ExecuTorch's Python runtime or (``--runner native``) in the C++ runner of ``runner/``,
and prints, per layer, fp32 ms, int8 ms and their ratio;
``--slow-out FILE`` writes the layers whose int8 is slower than fp32 as a JSON list
of module patterns, which ``dotcom-mobile quantize --keep-fp32-from FILE`` keeps in
fp32 (mixed precision for speed, not only for accuracy; issue 13).

How an XNNPACK event finds its layer. The delegate's profiling events carry only
XNNPACK's operator names (``Convolution (NHWC, QS8) IGEMM #1``), no debug handle
(``XnnpackBackend.preprocess`` returns an empty ``debug_handle_map``), so the
ExecuTorch Inspector cannot map them to graph nodes. XNNPACK runs its operators in
the order of the graph it was given, so the events are aligned with the ETRecord's
edge graph (``export --etrecord``) by operator class (convolution and linear ->
GEMM, mul -> Multiply, ...), longest common subsequence first (:mod:`difflib`).
An event with no node of its class (a ``Convert`` between int8 and fp32, a layout
transpose XNNPACK inserted) is charged to the layer of the op before it: the
conversion after an int8 conv is that conv's cost. The layer of a node is its
innermost module in ``nn_module_stack``, a ConvNormAct's children folded into it
(``quantize/numerics.py::layer_of``, the names ``--keep-fp32-modules`` matches).

Times are the median over ``--runs`` executions of each event (after ``--warmup``)
in ETDump's own clock. Both programs are loaded in one process (the Python runtime, or
the native runner with two ``--model``) and called one after the other, run by run (as
``perf.interleave`` times whole models), so a slow spell of a shared host lands on fp32
and int8 alike: profiled one after the other, Small's whole-model int8/fp32 read 0.66 in
one run where the two timed in turn read 0.88. On a shared machine read the ratios, not
the milliseconds.

Usage::

    dotcom-mobile export --model tiny --input-size 64 --etrecord --out fp
    dotcom-mobile quantize --model tiny --input-size 64 --out q
    dotcom-mobile export --quantized q/dotcom_tiny_xnnpack_q8.pt2 --etrecord --out q8
    python -m dotcom_mobile.perf.layer_speed fp/dotcom_tiny_xnnpack_fp32.pte q8/dotcom_tiny_xnnpack_q8.pte \\
        --json layers.json --slow-out slow.json
    dotcom-mobile quantize --model tiny --input-size 64 --keep-fp32-from slow.json --out q_fast
"""

from __future__ import annotations

import argparse
import difflib
import re
import statistics
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from dotcom_mobile.model.errors import DotcomError

SCHEMA = "dotcom-mobile/layer-speed"
#: What ``--json`` writes, checked by :func:`validate_layer_speed`.
JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["schema", "schema_version", "threads", "warmup", "runs", "fp32", "int8", "layers", "int8_slower"],
    "properties": {
        "schema": {"const": SCHEMA},
        "schema_version": {"const": 1},
        "threads": {"type": "integer", "minimum": 1},
        "warmup": {"type": "integer", "minimum": 0},
        "runs": {"type": "integer", "minimum": 1},
        "fp32": {"$ref": "#/$defs/program"},
        "int8": {"$ref": "#/$defs/program"},
        "layers": {"type": "array", "items": {
            "type": "object", "required": ["layer", "fp32_ms", "int8_ms", "ratio", "fp32_ops", "int8_ops"],
            "properties": {
                "layer": {"type": "string", "minLength": 1},
                "fp32_ms": {"type": ["number", "null"], "minimum": 0},
                "int8_ms": {"type": ["number", "null"], "minimum": 0},
                "ratio": {"type": ["number", "null"], "minimum": 0},
                "fp32_ops": {"type": "integer", "minimum": 0},
                "int8_ops": {"type": "integer", "minimum": 0},
            }}},
        "int8_slower": {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True},
    },
    "$defs": {"program": {
        "type": "object", "required": ["pte", "etrecord", "events", "matched_events", "execute_ms"],
        "properties": {"pte": {"type": "string"}, "etrecord": {"type": "string"},
                       "events": {"type": "integer", "minimum": 0}, "matched_events": {"type": "integer", "minimum": 0},
                       "execute_ms": {"type": ["number", "null"], "minimum": 0}}}},
}

#: edge op name -> class; None: no runtime operator of its own (weights' dequantize, q/dq XNNPACK fuses).
NODE_CLASS: dict[str, str | None] = {
    "convolution": "gemm", "linear": "gemm", "addmm": "gemm", "mm": "gemm", "bmm": "bmm",
    "sigmoid": "sigmoid", "mul": "mul", "add": "add", "sub": "sub", "div": "div",
    "view_copy": "reshape", "squeeze_copy": "reshape", "unsqueeze_copy": "reshape", "permute_copy": "transpose",
    "slice_copy": "slice", "pow": "square", "rsqrt": "rsqrt", "sqrt": "sqrt", "_softmax": "softmax",
    "softmax": "softmax", "mean": "mean", "cat": "concat", "_clone_dim_order": "copy", "clone": "copy",
    "relu": "clamp", "hardtanh": "clamp", "clamp": "clamp", "max_pool2d": "maxpool", "avg_pool2d": "avgpool",
    "gelu": "gelu", "hardswish": "hardswish", "tanh": "tanh", "neg": "neg", "upsample_bilinear2d": "resize",
    "quantize_per_tensor": None, "dequantize_per_tensor": None, "quantize_per_channel": None,
    "dequantize_per_channel": None, "choose_qparams": None, "getitem": None,
}
#: XNNPACK operator name (before the parenthesis) -> class.
EVENT_CLASS: dict[str, str] = {
    "Convolution": "gemm", "Fully Connected": "gemm", "Deconvolution": "gemm", "Batch Matrix Multiply": "bmm",
    "Sigmoid": "sigmoid", "Multiply": "mul", "Add": "add", "Subtract": "sub", "Divide": "div",
    "Static Reshape": "reshape", "Transpose": "transpose", "Slice": "slice", "Square": "square",
    "Reciprocal Square Root": "rsqrt", "Square Root": "sqrt", "Softmax": "softmax", "Mean": "mean",
    "Global Average Pooling": "mean", "Concatenate": "concat", "Copy": "copy", "Clamp": "clamp",
    "Max Pooling": "maxpool", "Average Pooling": "avgpool", "GELU": "gelu", "HardSwish": "hardswish",
    "TanH": "tanh", "Negate": "neg", "Resize Bilinear": "resize", "Lookup Table": "lut",
}
#: XNNPACK runs every quantized unary op (sigmoid, tanh, hardswish; ``x * sigmoid(x)`` is fused
#: into one) as a 256-entry table lookup, an operator its name table lacks: the event reads
#: "Invalid Unary Op". Renamed so the operator table says what ran (int8 SiLU: perf/README).
EVENT_RENAMES: dict[str, str] = {"Invalid Unary Op": "Lookup Table (NC, 8-bit unary)"}


@dataclass
class Profile:
    """One program's per-layer times (ms, median over runs) and op counts, in graph order."""

    pte: Path
    etrecord: Path
    layers: dict[str, float]
    ops: dict[str, int]
    events: int
    matched_events: int
    execute_ms: float | None
    # XNNPACK operator kind (the event name without its ``#N``) -> (count, ms): needs no alignment.
    operators: dict[str, tuple[int, float]] = field(default_factory=dict)


# --------------------------------------------------------------------------- pure parts


def op_name(target: Any) -> str:
    """``convolution`` from ``aten.convolution.default`` (an edge or aten op), else ``str(target)``."""
    name = getattr(target, "__name__", None) or str(target)
    parts = name.split(".")
    return parts[-2] if len(parts) >= 2 else name


def event_name(raw: str) -> str:
    """An ETDump event's XNNPACK operator name, ``#N`` kept, with :data:`EVENT_RENAMES` applied."""
    m = re.match(r"^(.*?)(\s*#\d+)?$", raw)
    base, num = m.group(1), m.group(2) or ""
    return EVENT_RENAMES.get(base, base) + num


def event_class(name: str) -> str:
    """``gemm`` from ``Fully Connected (NC, QS8) GEMM #3``; unknown operators keep their own name."""
    base = re.sub(r"\s*\(.*$|\s*#\d+$", "", name).strip()
    return EVENT_CLASS.get(base, base.lower())


def align(node_classes: Sequence[str], event_classes: Sequence[str]) -> list[int]:
    """For every event, the index of the node it is charged to (see the module docstring).

    Matched events get their node; an unmatched one the node of the nearest matched
    event before it (the first matched node for events before any match).
    """
    owner: list[int | None] = [None] * len(event_classes)
    sm = difflib.SequenceMatcher(None, list(node_classes), list(event_classes), autojunk=False)
    for block in sm.get_matching_blocks():
        for k in range(block.size):
            owner[block.b + k] = block.a + k
    first = next((o for o in owner if o is not None), 0)
    out, last = [], first
    for o in owner:
        last = o if o is not None else last
        out.append(last)
    return out


def compare(fp32: Profile, int8: Profile) -> list[dict[str, Any]]:
    """One row per layer (fp32 graph order, then int8-only layers): ms, ratio int8/fp32, op counts."""
    rows = []
    for layer in list(dict.fromkeys([*fp32.layers, *int8.layers])):
        f, q = fp32.layers.get(layer), int8.layers.get(layer)
        rows.append({"layer": layer, "fp32_ms": f, "int8_ms": q,
                     "ratio": q / f if f and q is not None else None,
                     "fp32_ops": fp32.ops.get(layer, 0), "int8_ops": int8.ops.get(layer, 0)})
    return rows


def slow_layers(rows: Sequence[dict[str, Any]], margin: float = 1.0, min_delta_ms: float = 0.001) -> list[str]:
    """Layers whose int8 time exceeds ``margin`` x fp32, as patterns for ``--keep-fp32-modules``.

    int8 must also be slower by more than ``min_delta_ms`` (default 1 us, the ETDump
    clock's resolution): a 2 us op measured 2.1 us in int8 is a tie, not a reason.

    A pattern keeps a module *and everything inside it* in fp32, so a layer that is the
    parent of other layers (a block's own residual add is charged to the block) is
    left out: its pattern would unquantize the whole block, not the one slow op.
    The top level (ops outside any module) has no pattern either.
    """
    from dotcom_mobile.quantize.numerics import TOP_LEVEL

    names = [r["layer"] for r in rows]
    out = []
    for r in rows:
        layer = r["layer"]
        if r["ratio"] is None or r["ratio"] <= margin or layer == TOP_LEVEL:
            continue
        if r["int8_ms"] - r["fp32_ms"] <= min_delta_ms:
            continue
        if any(other.startswith(layer + ".") for other in names):
            continue
        out.append(layer)
    return out


def format_table(rows: Sequence[dict[str, Any]], slow: Sequence[str], fp32: Profile, int8: Profile) -> str:
    """Aligned text table, slowest int8/fp32 ratios marked, totals under it."""
    def ms(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    head = ("layer", "fp32 ms", "int8 ms", "int8/fp32", "ops fp32/int8", "")
    body = [(r["layer"], ms(r["fp32_ms"]), ms(r["int8_ms"]), "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
             f"{r['fp32_ops']}/{r['int8_ops']}", "int8 slower" if r["layer"] in slow else "") for r in rows]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths[:-1]))
    tf, tq = sum(fp32.layers.values()), sum(int8.layers.values())
    lines += ["", f"sum of layers: fp32 {tf:.3f} ms, int8 {tq:.3f} ms ({tq / tf:.2f}x)" if tf else "",
              f"Method::execute: fp32 {ms(fp32.execute_ms)} ms, int8 {ms(int8.execute_ms)} ms; events matched to "
              f"graph nodes by class: fp32 {fp32.matched_events}/{fp32.events}, int8 {int8.matched_events}/{int8.events}",
              f"{len(slow)} layer(s) slower in int8" + (f": {', '.join(slow)}" if slow else "")]
    return "\n".join(lines)


def to_json(rows: Sequence[dict[str, Any]], slow: Sequence[str], fp32: Profile, int8: Profile, *, threads: int,
            warmup: int, runs: int) -> dict[str, Any]:
    def prog(p: Profile) -> dict[str, Any]:
        return {"pte": str(p.pte), "etrecord": str(p.etrecord), "events": p.events, "matched_events": p.matched_events,
                "execute_ms": p.execute_ms}

    doc = {"schema": SCHEMA, "schema_version": 1, "threads": threads, "warmup": warmup, "runs": runs,
           "fp32": prog(fp32), "int8": prog(int8), "layers": list(rows), "int8_slower": list(slow)}
    return validate_layer_speed(doc)


def validate_layer_speed(doc: Any, source: str = "<layer-speed>") -> dict[str, Any]:
    """``doc`` if it is a layer-speed v1 document, else one-line :class:`DotcomError` naming the field."""
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(JSON_SCHEMA).iter_errors(doc), key=lambda e: len(list(e.absolute_path)))
    if errors:
        e = errors[0]
        field = ".".join(str(p) for p in e.absolute_path) or "<root>"
        raise DotcomError(f"{source}: field {field}: {' '.join(e.message.split())[:160]}")
    return doc


# --------------------------------------------------------------------------- running


def _etrecord_for(pte: Path, etrecord: Path | None) -> Path:
    path = etrecord or pte.with_suffix(".etrecord")
    if not path.is_file():
        raise DotcomError(f"{path}: no ETRecord for {pte.name} (export it with `dotcom-mobile export --etrecord`)")
    return path


def _edge_program(etrecord: Path) -> Any:
    from executorch.devtools.etrecord import parse_etrecord

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = parse_etrecord(str(etrecord)).edge_dialect_program
    if ep is None:
        raise DotcomError(f"{etrecord}: the ETRecord has no edge program")
    return ep


def _graph_nodes(etrecord: Path, ep: Any = None) -> list[Any]:
    ep = ep if ep is not None else _edge_program(etrecord)
    return [n for n in ep.graph_module.graph.nodes if n.op == "call_function"]


def _input_shape(pte: Path, nodes_ep_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    from dotcom_mobile.report.latency import find_manifest

    manifest = find_manifest(pte) or {}
    shape = (manifest.get("input") or {}).get("shape")
    if shape:
        return tuple(int(s) for s in shape)
    if nodes_ep_shape:
        return nodes_ep_shape
    raise DotcomError(f"{pte}: input shape unknown (no manifest beside it)")


def _placeholder_shape(ep: Any) -> tuple[int, ...] | None:
    specs = [s for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    names = {s.arg.name for s in specs}
    for n in ep.graph_module.graph.nodes:
        if n.op == "placeholder" and n.name in names and hasattr(n.meta.get("val"), "shape"):
            return tuple(int(d) for d in n.meta["val"].shape)
    return None


def run_etdump(pte: Path, shape: tuple[int, ...], *, threads: int, warmup: int, runs: int,
               workdir: Path, runner: str = "python") -> tuple[list[tuple[str, float]], float | None]:
    """(event name, median ms over the timed runs) of every delegated event, in execution order; Method::execute ms.

    ``runner`` is ``python`` (ExecuTorch's Python runtime) or ``native`` (the C++ runner
    of ``runner/`` with ``--etdump``, the issue's "ETDump on the native runner"): the same
    XNNPACK kernels and profiler, without the bindings around each call.
    """
    return _etdumps([pte], shape, threads=threads, warmup=warmup, runs=runs, workdir=workdir, runner=runner)[0]


def _etdumps(ptes: Sequence[Path], shape: tuple[int, ...], *, threads: int, warmup: int, runs: int, workdir: Path,
             runner: str) -> list[tuple[list[tuple[str, float]], float | None]]:
    """:func:`run_etdump` of several programs profiled in turn in one process (either runner)."""
    etdps = [workdir / f"{i}_{pte.stem}.etdp" for i, pte in enumerate(ptes)]
    if runner == "native":
        from dotcom_mobile.bench.native import run_native_in_turn

        warmup = max(warmup, 1)  # the native runner's first run is its first warm-up run
        run_native_in_turn(ptes, threads=threads, warmup=warmup, iters=runs, repeats=1, etdumps=etdps,
                           out_jsons=[workdir / f"{i}_{pte.stem}.json" for i, pte in enumerate(ptes)])
    elif runner == "python":
        _python_etdumps(ptes, shape, threads=threads, runs=warmup + runs, etdps=etdps)
    else:
        raise DotcomError(f"unknown runner {runner!r} (python, native)")
    return [read_etdump(etdp, warmup, pte) for etdp, pte in zip(etdps, ptes)]


def _python_etdumps(ptes: Sequence[Path], shape: tuple[int, ...], *, threads: int, runs: int,
                    etdps: Sequence[Path]) -> None:
    """Profile ``ptes`` in one process, one call of each in turn per run; ETDump ``i`` to ``etdps[i]``."""
    import torch
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    from executorch.runtime import Runtime, Verification

    from dotcom_mobile.export.pte import check_program

    for pte in ptes:
        check_program(pte, runs_here=True)
    _unsafe_reset_threadpool(threads)
    programs = [Runtime.get().load_program(str(pte), verification=Verification.Minimal, enable_etdump=True,
                                           debug_buffer_size=0) for pte in ptes]
    methods = [program.load_method("forward") for program in programs]
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    for _ in range(runs):
        for method in methods:
            method.execute([x])
    for program, etdp in zip(programs, etdps):
        program.write_etdump_result_to_file(str(etdp), str(etdp.with_suffix(".debug")))


def read_etdump(etdp: Path, warmup: int, pte: Path) -> tuple[list[tuple[str, float]], float | None]:
    """The delegated events of an ETDump's ``Execute`` blocks, each its median over the runs after ``warmup``."""
    from executorch.devtools import Inspector

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inspector = Inspector(etdump_path=str(etdp))
    events, execute_ms = [], None
    for block in inspector.event_blocks:
        if block.name != "Execute":
            continue
        for e in block.events:
            raw = list(e.perf_data.raw) if e.perf_data is not None else []
            timed = raw[warmup:] or raw
            if not timed:
                continue
            if e.name == "Method::execute":
                execute_ms = statistics.median(timed)
            elif e.is_delegated_op:
                events.append((event_name(e.name), statistics.median(timed)))
    if not events:
        raise DotcomError(f"{pte}: the ETDump has no delegate events (not an XNNPACK program, or a runtime "
                          "built without delegate profiling)")
    return events, execute_ms


@dataclass
class _Graph:
    """What the ETRecord of one program says: its op nodes in graph order and its input shape."""

    pte: Path
    etrecord: Path
    nodes: list[Any]
    shape: tuple[int, ...]


def _graph(pte: str | Path, etrecord: str | Path | None) -> _Graph:
    pte = Path(pte)
    if not pte.is_file():
        raise DotcomError(f"{pte}: no such file")
    rec = _etrecord_for(pte, Path(etrecord) if etrecord else None)
    ep = _edge_program(rec)  # parsed once: an ETRecord of Base takes seconds
    nodes = [n for n in _graph_nodes(rec, ep) if NODE_CLASS.get(op_name(n.target), op_name(n.target)) is not None]
    return _Graph(pte, rec, nodes, _input_shape(pte, _placeholder_shape(ep)))


def _charge(g: _Graph, events: list[tuple[str, float]], execute_ms: float | None) -> Profile:
    """Per-layer times of one program: its events charged to the layers of its graph's nodes."""
    from dotcom_mobile.quantize.numerics import layer_of

    node_classes = [NODE_CLASS.get(op_name(n.target)) or op_name(n.target) for n in g.nodes]
    event_classes = [event_class(name) for name, _ in events]
    owners = align(node_classes, event_classes)
    matched = sum(m.size for m in difflib.SequenceMatcher(None, node_classes, event_classes,
                                                         autojunk=False).get_matching_blocks())
    layers: dict[str, float] = {layer_of(n): 0.0 for n in g.nodes}
    ops: dict[str, int] = {}
    for (name, ms), owner in zip(events, owners):
        layer = layer_of(g.nodes[owner])
        layers[layer] += ms
        ops[layer] = ops.get(layer, 0) + 1
    layers = {k: v for k, v in layers.items() if k in ops}
    return Profile(g.pte, g.etrecord, layers, ops, len(events), matched, execute_ms, operator_totals(events))


def profile_pair(fp32: str | Path, int8: str | Path, fp32_etrecord: str | Path | None = None,
                 int8_etrecord: str | Path | None = None, *, threads: int = 1, warmup: int = 3, runs: int = 10,
                 runner: str = "python") -> tuple[Profile, Profile]:
    """Per-layer times of an fp32 and an int8 program of one model, profiled in turn in one process."""
    graphs = [_graph(fp32, fp32_etrecord), _graph(int8, int8_etrecord)]
    if graphs[0].shape != graphs[1].shape:
        raise DotcomError(f"{graphs[0].pte} takes {list(graphs[0].shape)} but {graphs[1].pte} takes "
                          f"{list(graphs[1].shape)}: compare two programs of the same model and input size")
    with tempfile.TemporaryDirectory(prefix="dotcom-etdump-") as tmp:
        dumps = _etdumps([g.pte for g in graphs], graphs[0].shape, threads=threads, warmup=warmup, runs=runs,
                         workdir=Path(tmp), runner=runner)
    return _charge(graphs[0], *dumps[0]), _charge(graphs[1], *dumps[1])


def operator_totals(events: Sequence[tuple[str, float]]) -> dict[str, tuple[int, float]]:
    """(count, summed ms) per XNNPACK operator kind: ``Convolution (NHWC, QC8) DWConv #3`` counts as its kind."""
    totals: dict[str, tuple[int, float]] = {}
    for name, ms in events:
        kind = re.sub(r"\s*#\d+$", "", name).strip()
        n, t = totals.get(kind, (0, 0.0))
        totals[kind] = (n + 1, t + ms)
    return totals


def format_operators(fp32: Profile, int8: Profile) -> str:
    """Per operator kind, both programs, slowest first: where the time goes, with no layer alignment involved.

    Operator kinds name their precision (``F32``, ``QS8``, ``QC8``), so the table shows
    which kernels an int8 program still runs in fp32 (the attention's batch matmuls and
    softmax) and which int8 kernels are slower than their fp32 twins on this CPU.
    """
    kinds = sorted(set(fp32.operators) | set(int8.operators),
                   key=lambda k: -max(fp32.operators.get(k, (0, 0.0))[1], int8.operators.get(k, (0, 0.0))[1]))
    head = ("XNNPACK operator", "fp32 n", "fp32 ms", "int8 n", "int8 ms")
    body = []
    for k in kinds:
        (nf, tf), (nq, tq) = fp32.operators.get(k, (0, 0.0)), int8.operators.get(k, (0, 0.0))
        body.append((k, str(nf or "-"), f"{tf:.3f}" if nf else "-", str(nq or "-"), f"{tq:.3f}" if nq else "-"))
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_patterns(path: str | Path, patterns: Sequence[str]) -> Path:
    """The file ``quantize --keep-fp32-from`` reads: a JSON list of module patterns."""
    from dotcom_mobile.report.latency import write_json_atomic

    return write_json_atomic(path, list(patterns))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m dotcom_mobile.perf.layer_speed", description=__doc__.split("\n\n")[0],
        epilog="Example: python -m dotcom_mobile.perf.layer_speed fp/m_xnnpack_fp32.pte q8/m_xnnpack_q8.pte "
               "--slow-out slow.json; then dotcom-mobile quantize ... --keep-fp32-from slow.json")
    p.add_argument("fp32", type=Path, help="fp32 XNNPACK .pte (its <stem>.etrecord beside it)")
    p.add_argument("int8", type=Path, help="int8 XNNPACK .pte of the same model (its <stem>.etrecord beside it)")
    p.add_argument("--fp32-etrecord", type=Path, default=None, help="ETRecord of the fp32 program if not beside it")
    p.add_argument("--int8-etrecord", type=Path, default=None, help="ETRecord of the int8 program if not beside it")
    p.add_argument("--threads", type=int, default=1, help="XNNPACK threads (default 1: per-op times add up)")
    p.add_argument("--warmup", type=int, default=3, help="untimed executions first (default 3)")
    p.add_argument("--runs", type=int, default=10, help="timed executions; each event's median is used (default 10)")
    p.add_argument("--runner", choices=("python", "native"), default="python",
                   help="profile in ExecuTorch's Python runtime or in the C++ runner of runner/ (built on first use)")
    p.add_argument("--margin", type=float, default=1.0,
                   help="a layer is slow when int8 ms > MARGIN x fp32 ms (default 1.0; 1.1 ignores near-ties)")
    p.add_argument("--min-delta-ms", type=float, default=0.001,
                   help="and int8 must be slower by more than this (default 0.001: the ETDump clock's resolution)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the whole table (layer-speed v1)")
    p.add_argument("--slow-out", type=Path, default=None, metavar="FILE",
                   help="write the int8-slower layers as a JSON list of patterns for quantize --keep-fp32-from")
    a = p.parse_args(argv)
    try:
        if a.threads < 1 or a.runs < 1 or a.warmup < 0:
            raise DotcomError("--threads and --runs must be 1 or more, --warmup 0 or more")
        fp32, int8 = profile_pair(a.fp32, a.int8, a.fp32_etrecord, a.int8_etrecord, threads=a.threads,
                                  warmup=a.warmup, runs=a.runs, runner=a.runner)
        rows = compare(fp32, int8)
        slow = slow_layers(rows, a.margin, a.min_delta_ms)
        print(format_table(rows, slow, fp32, int8))
        print()
        print(format_operators(fp32, int8))
        if a.json:
            from dotcom_mobile.report.latency import write_json_atomic

            write_json_atomic(a.json, to_json(rows, slow, fp32, int8, threads=a.threads, warmup=a.warmup, runs=a.runs))
            print(f"wrote {a.json}", file=sys.stderr)
        if a.slow_out:
            write_patterns(a.slow_out, slow)
            print(f"wrote {a.slow_out} ({len(slow)} pattern(s))", file=sys.stderr)
    except DotcomError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from dotcom_mobile.export.noise import quiet_known_noise

    quiet_known_noise()  # as the CLI does: import-time library chatter unless DOTCOM_VERBOSE=1
    sys.exit(main())
