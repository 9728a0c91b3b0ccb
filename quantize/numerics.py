"""Where int8 hurts: output SQNR, agreement, accuracy and per-layer SQNR.

Per-layer numbers come from torchao's numeric debugger: both graphs (fp32 and
quantized) get an output logger after every node that stems from the original export,
run the same inputs, and ``compare_results`` pairs the logs by source node. Those
SQNRs are *cumulative* (each node sees the error of everything before it), so the last
layers always look worst. To find the layers that *cause* the loss, each layer is also
given its *drop*: the SQNR entering the layer minus the SQNR leaving it, in dB. A layer
that keeps SQNR costs nothing however late it sits; one that loses 10 dB is the one to
keep in fp32. ``--keep-fp32 N`` ranks by that drop.

A "layer" is the innermost module of the DoTCoM model that produced the nodes, with
Conv-BN-act triples (:class:`ConvNormAct`) counted as one layer, named by its module
path in the model (``stages.4.2.transformer.1.norm2``), which is also what
``--keep-fp32-modules`` matches.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch.fx import GraphModule, Node

# A node whose logs match the reference exactly would have infinite SQNR; cap it.
SQNR_CAP = 100.0
_GROUPED_PARENTS = ("ConvNormAct",)
TOP_LEVEL = "(top level)"  # children of these are one layer with them


def sqnr_db(ref: torch.Tensor, test: torch.Tensor) -> float:
    """10 log10(|ref|^2 / |ref - test|^2), capped at :data:`SQNR_CAP`.

    In float32, the logged activations' own precision, with torch's norm kernel: within
    0.01 dB of an all-double computation and ten times faster, which matters for the
    per-layer report's ~650 logged activations (each a batch of feature maps).
    """
    return sqnr_from_powers(*_powers(ref, test))


def _powers(ref: torch.Tensor, test: torch.Tensor) -> tuple[float, float]:
    """(|ref|^2, |ref - test|^2): the two sums an SQNR is made of, additive over batches."""
    ref, test = ref.detach().float(), test.detach().float()
    return torch.linalg.vector_norm(ref).item() ** 2, torch.linalg.vector_norm(ref - test).item() ** 2


def sqnr_from_powers(signal: float, noise: float) -> float:
    """:func:`sqnr_db` from its two sums, capped at :data:`SQNR_CAP`."""
    if noise == 0.0:
        return SQNR_CAP
    ratio = signal / noise
    if not ratio > 0.0:  # zero signal (or an underflow)
        return -SQNR_CAP
    return max(-SQNR_CAP, min(SQNR_CAP, 10.0 * math.log10(ratio)))


@torch.no_grad()
def run_batched(model: torch.nn.Module, inputs: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    return torch.cat([model(inputs[i: i + batch_size]) for i in range(0, len(inputs), batch_size)])


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    k = min(k, logits.shape[1])
    hit = (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1)
    return float(hit.float().mean())


def compare_outputs(ref: torch.Tensor, test: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
    """Output SQNR, top-1 agreement and (with labels) accuracy of both.

    ``fp32_top1_classes`` counts the distinct classes fp32 predicts. When it is 1 over
    several images (an untrained model: its logits hardly depend on the input), the
    agreement is all-or-nothing on one near-tie and says nothing about int8 quality;
    :func:`agreement_text` then prints it as not meaningful.
    """
    out = {
        "images": int(ref.shape[0]),
        "sqnr_db": round(sqnr_db(ref, test), 2),
        "top1_agreement": round(float((ref.argmax(1) == test.argmax(1)).float().mean()), 4),
        "fp32_top1_classes": int(ref.argmax(1).unique().numel()),
        "max_abs_diff": float((ref - test).abs().max()),
    }
    if labels is not None:
        out["fp32_top1"] = round(topk_accuracy(ref, labels, 1), 4)
        out["fp32_top5"] = round(topk_accuracy(ref, labels, 5), 4)
        out["int8_top1"] = round(topk_accuracy(test, labels, 1), 4)
        out["int8_top5"] = round(topk_accuracy(test, labels, 5), 4)
    return out


def agreement_informative(e: dict) -> bool:
    """Whether ``e['top1_agreement']`` measures anything (see :func:`compare_outputs`)."""
    return e.get("images", 0) < 2 or e.get("fp32_top1_classes", 2) > 1


def agreement_text(e: dict) -> str:
    """``top-1 agreement 98.4%``, or why the figure is left out."""
    if agreement_informative(e):
        return f"top-1 agreement {100 * e['top1_agreement']:.1f}%"
    return "top-1 agreement not meaningful (fp32 predicts one class for every image: untrained weights?)"


def summary_line(e: dict) -> str:
    """``SQNR 31.2 dB, top-1 agreement 99.2%, top-1 fp32 97.7% -> int8 97.5%``: one evaluation, one line."""
    s = f"SQNR {e['sqnr_db']:.1f} dB, {agreement_text(e)}"
    if "int8_top1" in e:
        s += f", top-1 fp32 {100 * e['fp32_top1']:.1f}% -> int8 {100 * e['int8_top1']:.1f}%"
    return s


# --- module paths ---------------------------------------------------------------------

def _normalize(path: str) -> str:
    for prefix in ("L['self'].", "L__self__."):
        if path.startswith(prefix):
            path = path[len(prefix):]
    return path


def module_stack(node: Node) -> list[tuple[str, str]]:
    """(path, type name) from the outermost to the innermost module of ``node``."""
    stack = node.meta.get("nn_module_stack") or {}
    out = []
    for path, tp in stack.values():
        tp_name = tp.__qualname__ if isinstance(tp, type) else str(tp).rsplit(".", 1)[-1]
        path = _normalize(str(path))
        if path:
            out.append((path, tp_name))
    return out


def layer_of(node: Node) -> str:
    """The layer name of ``node``: innermost module path, ConvNormAct children folded."""
    stack = module_stack(node)
    if not stack:
        return TOP_LEVEL
    for (path, tp), _ in zip(stack, stack[1:]):
        if tp in _GROUPED_PARENTS:
            return path
    return stack[-1][0]


def module_paths(node: Node) -> list[str]:
    return [p for p, _ in module_stack(node)]


def matches_any(node: Node, patterns: Sequence[str]) -> bool:
    """True if ``node`` lies in a module whose path matches an fnmatch pattern (or a prefix)."""
    paths = module_paths(node)
    return any(fnmatch.fnmatchcase(p, pat) for p in paths for pat in patterns)


def skip_filter(patterns: Sequence[str] = (), layers: Sequence[str] = (), types: Sequence[str] = ()):
    """The ``skip`` predicate for :func:`make_quantizer`.

    ``patterns`` match a module and everything inside it (``stages.4.2`` skips the whole
    DoT block); ``layers`` match exactly one layer as named by :func:`layer_of` (the
    automatic ``--keep-fp32 N`` picks, so picking a block's own cat does not also
    unquantize its transformer); ``types`` match module class names anywhere in a
    node's module stack (``LinearLayerNorm``).
    """
    pats, exact, tps = tuple(patterns), frozenset(layers), frozenset(types)
    if not pats and not exact and not tps:
        return None

    def skip(n: Node) -> bool:
        if exact and layer_of(n) in exact:
            return True
        if tps and any(t in tps for _, t in module_stack(n)):
            return True
        return bool(pats) and matches_any(n, pats)

    return skip


# --- per-layer SQNR -------------------------------------------------------------------

@dataclass
class LayerStat:
    """One layer: SQNR at its output (cumulative), SQNR entering it, and the drop."""

    layer: str
    module_type: str
    ops: list[str]
    sqnr_in_db: float
    sqnr_out_db: float

    @property
    def drop_db(self) -> float:
        return round(self.sqnr_in_db - self.sqnr_out_db, 2)

    def to_dict(self) -> dict:
        return {"layer": self.layer, "type": self.module_type, "ops": self.ops,
                "sqnr_db": round(self.sqnr_out_db, 2), "sqnr_in_db": round(self.sqnr_in_db, 2),
                "drop_db": self.drop_db}


PER_NODE_CHUNK = 2  # images per pass through the logged graphs


@torch.no_grad()
def per_node_sqnr(reference: GraphModule, quantized: GraphModule, inputs: torch.Tensor,
                  chunk: int = PER_NODE_CHUNK) -> dict[str, float]:
    """SQNR of every reference node's output over ``inputs``, from torchao's numeric debugger.

    The logged graphs keep every node's output; run on all images at once they hold a few
    GB of activations, and the int8 one ran 5x slower than unlogged. Here they see
    ``chunk`` images at a time, and each node's signal and noise powers are summed over
    the chunks, which is the SQNR of the whole batch (the sums are additive).
    """
    from torchao.quantization.pt2e import (
        compare_results,
        extract_results_from_loggers,
        prepare_for_propagation_comparison,
    )

    ref_logged = prepare_for_propagation_comparison(reference)
    q_logged = prepare_for_propagation_comparison(quantized)
    powers: dict[str, list[float]] = {}
    for i in range(0, len(inputs), chunk):
        x = inputs[i: i + chunk]
        ref_logged(x)
        q_logged(x)
        ref_results = _float_tensors_only(extract_results_from_loggers(ref_logged))
        _pair_folded_batchnorms(reference, ref_results)
        comparisons = compare_results(ref_results, _float_tensors_only(extract_results_from_loggers(q_logged)))
        this_chunk: dict[str, tuple[float, float]] = {}  # by name: a BN's pair replaces its conv's
        for summary in comparisons.values():
            result = summary.results[0]
            ref, actual = result.ref, result.actual
            if isinstance(ref, torch.Tensor) and isinstance(actual, torch.Tensor) and ref.is_floating_point() \
                    and actual.is_floating_point():
                this_chunk[summary.ref_node_name] = _powers(ref, actual)
        for name, (signal, noise) in this_chunk.items():
            total = powers.setdefault(name, [0.0, 0.0])
            total[0] += signal
            total[1] += noise
        for logged in (ref_logged, q_logged):
            for module in logged.children():
                if hasattr(module, "stats") and hasattr(module, "debug_info"):
                    module.stats.clear()
    return {name: sqnr_from_powers(signal, noise) for name, (signal, noise) in powers.items()}


def _float_tensors_only(results: dict) -> dict:
    """Drop logs of non-tensor nodes (``sym_size`` of a dynamic batch) and integer tensors."""
    return {k: v for k, v in results.items()
            if v[2] and isinstance(v[2][0], torch.Tensor) and v[2][0].is_floating_point()}


def _pair_folded_batchnorms(reference: GraphModule, ref_results: dict) -> None:
    """Let each conv's reference log be its BatchNorm's output, in place.

    ``convert_pt2e`` folds BatchNorm into the preceding conv, so the quantized graph's
    conv (same source node as the reference conv) outputs conv+BN while the reference
    conv outputs the conv alone. Comparing those would report nonsense; comparing the
    quantized conv with the reference BN output is the like-for-like pair.
    """
    import operator

    from torchao.quantization.pt2e._numeric_debugger import _extract_node_source_debug_info as debug_info

    for bn in reference.graph.nodes:
        if bn.op != "call_function" or "batch_norm" not in str(bn.target):
            continue
        conv = bn.args[0]
        if not isinstance(conv, Node) or "conv" not in str(conv.target) or len(conv.users) != 1:
            continue
        out = bn
        users = list(bn.users)
        if len(users) == 1 and users[0].target is operator.getitem:
            out = users[0]  # batch-norm variants that return a tuple
        conv_key, out_key = debug_info(conv), debug_info(out)
        if conv_key in ref_results and out_key in ref_results:
            _, stack, stats = ref_results[out_key]
            ref_results[conv_key] = (out.name, stack, stats)


def per_layer_sqnr(reference: GraphModule, node_sqnr: dict[str, float]) -> list[LayerStat]:
    """Group node SQNRs into layers, in graph order, with the SQNR entering each."""
    nodes = [n for n in reference.graph.nodes if n.op == "call_function"]
    layer_nodes: dict[str, list[Node]] = {}
    for n in nodes:
        layer_nodes.setdefault(layer_of(n), []).append(n)

    def known(n: Node) -> float | None:
        # The graph input has no logged SQNR (it is quantized inside the first layer):
        # the layers it feeds get no drop rather than an arbitrary one from the cap.
        return None if n.op == "placeholder" else node_sqnr.get(n.name)

    stats = []
    for layer, members in layer_nodes.items():
        inside = set(members)
        # SQNR entering: the worst SQNR among the tensors that flow in from outside.
        ins = [known(a) for m in members for a in m.all_input_nodes if a not in inside]
        ins = [v for v in ins if v is not None]
        # SQNR leaving: the worst among nodes used outside the layer (its outputs).
        outs = [node_sqnr[m.name] for m in members if m.name in node_sqnr
                and any(u not in inside for u in m.users)]
        if not outs:
            continue
        sqnr_out = min(outs)
        sqnr_in = min(ins) if ins else sqnr_out
        tp = next((t for p, t in reversed(module_stack(members[0])) if p == layer), "")
        ops = sorted({str(getattr(m.target, "__name__", m.target)).split(".")[0] for m in members})
        stats.append(LayerStat(layer, tp, ops, sqnr_in, sqnr_out))
    return stats


def most_sensitive(stats: Iterable[LayerStat], n: int) -> list[LayerStat]:
    """The ``n`` layers that lose the most SQNR (largest drop first)."""
    return sorted(stats, key=lambda s: (-s.drop_db, s.sqnr_out_db))[:n]


def worst_by_sqnr(stats: Iterable[LayerStat], n: int = 10) -> list[LayerStat]:
    """The ``n`` layers with the lowest (cumulative) output SQNR."""
    return sorted(stats, key=lambda s: s.sqnr_out_db)[:n]


# --- which ops of a quantized program run in int8 ------------------------------------

# Ops that only move or re-view data: they carry their input's encoding through (and
# backends.reads_relaid_tensor looks for them in front of a dynamic conv).
LAYOUT_OPS = frozenset({"view", "reshape", "_unsafe_view", "permute", "transpose", "slice", "flatten", "unflatten",
                        "pixel_shuffle", "pixel_unshuffle", "clone", "contiguous", "expand", "unsqueeze", "squeeze",
                        "alias", "t", "view_copy", "permute_copy", "slice_copy", "unsqueeze_copy", "squeeze_copy",
                        "expand_copy", "_to_copy", "_clone_dim_order", "_to_dim_order_copy", "getitem"})
# Inputs of these are weights and biases, not activations (their int8-ness is the weight's dq).
_ACTIVATION_ARGS = {"conv2d": (0,), "convolution": (0,), "linear": (0,), "addmm": (1,), "mm": (0,)}


def op_name(node: Node) -> str:
    """The aten op's base name (``conv2d`` for ``aten.conv2d.default``), or the target's name."""
    target = node.target
    name = getattr(target, "__name__", str(target))
    return name.split(".")[0]


def _qd(node: Node) -> str | None:
    """``'q'`` or ``'dq'`` for quantized_decomposed quantize/dequantize nodes, else None."""
    if node.op != "call_function":
        return None
    name = str(node.target)
    if "quantized_decomposed" not in name or "quantize_per" not in name:
        return None
    return "dq" if "dequantize" in name else "q"


def precision_summary(graph: torch.fx.Graph, int8_kernels: frozenset[str] | None = None) -> dict:
    """Quantize/dequantize node counts and which compute ops run in int8 or fp32.

    A compute op runs in int8 when every activation it reads comes from a dequantize
    and everything it produces goes straight into a quantize (layout ops such as
    reshape or permute in between carry the encoding through), so a delegate fuses the
    q/dq pairs away into int8 tensors; otherwise it computes in fp32 between explicit
    conversions (an "fp32 island"). Weights (a conv's or linear's second argument) are
    not activations. ``int8_kernels`` names the ops the backend has int8 kernels for
    (:attr:`~.backends.BackendSpec.int8_kernels`): an op outside it counts as fp32 even
    with quantized inputs and outputs, since the delegate converts around it. This is
    what the export manifest records for a quantized program.
    """
    nodes = [n for n in graph.nodes if n.op == "call_function"]
    counts = {"quantize_nodes": sum(_qd(n) == "q" for n in nodes),
              "dequantize_nodes": sum(_qd(n) == "dq" for n in nodes)}

    def quantized_source(n: Node) -> bool:
        while n.op == "call_function" and op_name(n) in LAYOUT_OPS and n.all_input_nodes:
            n = n.all_input_nodes[0]
        return _qd(n) == "dq"

    def quantized_sink(n: Node) -> bool:
        users = list(n.users)
        if not users:
            return False
        return all(_qd(u) == "q" or (op_name(u) in LAYOUT_OPS and quantized_sink(u)) for u in users)

    int8: dict[str, int] = {}
    fp32: dict[str, int] = {}
    for n in nodes:
        name = op_name(n)
        if _qd(n) is not None or name in LAYOUT_OPS or n.meta.get("val") is None:
            continue
        positions = _ACTIVATION_ARGS.get(name)
        args = [a for i, a in enumerate(n.args) if positions is None or i in positions]
        flat = [x for a in args for x in (a if isinstance(a, (list, tuple)) else (a,))]
        acts = [a for a in flat if isinstance(a, Node) and a.op == "call_function"
                and isinstance(a.meta.get("val"), torch.Tensor) and a.meta["val"].is_floating_point()]
        is_int8 = (bool(acts) and all(quantized_source(a) for a in acts) and quantized_sink(n)
                   and (int8_kernels is None or name in int8_kernels))
        table = int8 if is_int8 else fp32
        table[name] = table.get(name, 0) + 1
    counts["int8_ops"] = dict(sorted(int8.items()))
    counts["fp32_ops"] = dict(sorted(fp32.items()))
    return counts
