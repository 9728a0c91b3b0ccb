"""One quantizer factory per backend; everything else in the flow is shared.

Each backend ships its own PT2E quantizer because each delegate only fuses the
quantized patterns it has kernels for: a graph annotated for XNNPACK lowers to
XNNPACK's int8 kernels, one annotated for Core ML to Core ML's. Picking the wrong
quantizer gives a model that runs, but partly in fp32 with quantize/dequantize pairs
around every op.

``skip`` is how mixed precision works for both: a predicate on graph nodes, and a
node for which it returns True is left unannotated (so it stays fp32). XNNPACK's
quantizer takes it as its filter function; Core ML's quantizer has no global filter,
so a small subclass wraps the filter of every annotation pass.

:func:`finish_convert` is the one backend-specific step after ``convert_pt2e``: it
makes the converted eager module compute what the backend's kernels compute, so the
SQNR the report gives (and the module tests compare ``.pte`` files against) is the
phone's, not an idealised one.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch.fx import GraphModule, Node

from dotcom_mobile.model.errors import DotcomError

from .numerics import LAYOUT_OPS, op_name

SkipFn = Callable[[Node], bool]


@dataclass(frozen=True)
class BackendSpec:
    """What a backend's int8 scheme is, in words for the report and the manifest."""

    name: str
    quantizer: str
    scheme: str
    per_channel: bool = True
    supports_dynamic: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # Compute ops (aten names) the delegate runs in int8 when their inputs and outputs
    # are quantized; any other op runs in fp32 between conversions. None: not known here.
    int8_kernels: frozenset[str] | None = None


BACKENDS: dict[str, BackendSpec] = {
    "xnnpack": BackendSpec(
        "xnnpack",
        "dotcom_mobile.quantize.backends.DotcomXNNPACKQuantizer (ExecuTorch's XNNPACKQuantizer + int8 SiLU)",
        "int8 symmetric: per-channel weights, per-tensor activations (ranges of least expected error, scored "
        "through the SiLU where one follows: quantize/observers.py), int32 biases; SiLU as int8 sigmoid "
        "(scale 1/256) and int8 mul; LayerNorm and the classifier head in fp32",
        supports_dynamic=True,
        # ExecuTorch 1.5's XNNPACK partitioner configs with STATIC_QUANT, plus sigmoid (see
        # export.targets.xnnpack_partitioner_configs). bmm, softmax, rsqrt: fp32 only.
        int8_kernels=frozenset({"conv2d", "linear", "add", "sub", "mul", "cat", "mean", "relu", "sigmoid",
                                "hardtanh", "clamp", "max_pool2d", "elu", "adaptive_avg_pool2d"}),
    ),
    "coreml": BackendSpec(
        "coreml",
        "executorch.backends.apple.coreml.quantizer.CoreMLQuantizer",
        "8-bit symmetric: per-channel int8 weights, uint8 activations",
        extra={"minimum_deployment_target": "iOS17"},
    ),
}


def check_backend(backend: str) -> BackendSpec:
    """The spec of ``backend``, or a one-line error naming the choices."""
    if backend not in BACKENDS:
        raise DotcomError(f"unknown backend {backend!r} for quantize (choose from {', '.join(BACKENDS)})")
    return BACKENDS[backend]


def quiet_torch_logs() -> None:
    """Silence a deprecation warning torchao triggers on import (torch.utils._pytree).

    It is printed through torch's logger on every run, above the one line a user
    error must be; it says nothing about the user's model.
    """
    import logging

    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)


def _keep(skip: SkipFn | None) -> Callable[[Node], bool]:
    return (lambda n: True) if skip is None else (lambda n: not skip(n))


# XNNPACK's int8 sigmoid has one output encoding: scale 1/256, zero point -128, so that
# [0, 1) spans the whole int8 range (XNNPACK rejects any other for a qs8 sigmoid).
SIGMOID_SCALE, SIGMOID_ZERO_POINT = 1.0 / 256.0, -128


@functools.lru_cache(maxsize=None)
def _xnnpack_quantizer_class():
    """XNNPACKQuantizer plus the int8 annotations the stock one leaves out (built lazily: no import at load)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
    from torchao.quantization.pt2e.quantizer import (
        FixedQParamsQuantizationSpec,
        QuantizationAnnotation,
        SharedQuantizationSpec,
    )

    class DotcomXNNPACKQuantizer(XNNPACKQuantizer):
        """ExecuTorch's XNNPACK quantizer, with SiLU (``x * sigmoid(x)``) in int8 too.

        XNNPACK has int8 kernels for sigmoid and mul, but the stock quantizer annotates
        neither a sigmoid nor the mul of a SiLU by its sigmoid, so each SiLU of DoTCoM
        (63 in Tiny) stayed an fp32 island: dequantize, sigmoid, mul, quantize. Here the
        sigmoid gets XNNPACK's fixed output encoding and the mul reads the sigmoid's
        encoding as is (shared, no requantize between them), before the stock patterns
        run; nodes the filter keeps in fp32 are left alone.
        """

        def annotate(self, model: GraphModule) -> GraphModule:
            config = self.global_config
            if config is not None and config.input_activation is not None \
                    and not config.input_activation.is_dynamic:
                self._annotate_silu(model, config)
            return super().annotate(model)

        def _annotate_silu(self, model: GraphModule, config: Any) -> None:
            act_in, act_out = config.input_activation, config.output_activation
            fixed = FixedQParamsQuantizationSpec(
                dtype=torch.int8, scale=SIGMOID_SCALE, zero_point=SIGMOID_ZERO_POINT, quant_min=-128,
                quant_max=127, qscheme=torch.per_tensor_affine)
            keep = self.filter_fn or (lambda n: True)
            for sig in model.graph.nodes:
                if sig.op != "call_function" or sig.target != torch.ops.aten.sigmoid.default or not keep(sig):
                    continue
                x = sig.args[0]
                sig.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map={x: act_in}, output_qspec=fixed, _annotated=True)
                for mul in sig.users:  # x * sigmoid(x): the SiLU
                    if mul.target == torch.ops.aten.mul.Tensor and set(mul.args) == {x, sig} and keep(mul):
                        mul.meta["quantization_annotation"] = QuantizationAnnotation(
                            input_qspec_map={x: act_in, sig: SharedQuantizationSpec(sig)},
                            output_qspec=act_out, _annotated=True)

    return DotcomXNNPACKQuantizer


# Activation observers for static PTQ: "mse" picks each range by expected error
# (quantize/observers.py), "histogram" is PT2E's stock greedy search.
ACT_OBSERVERS = ("mse", "histogram")


def _with_observer(config: Any, observer: str) -> Any:
    """``config`` with its static activation observer swapped for ``observer``'s."""
    if observer == "histogram":
        return config
    import dataclasses

    from .observers import MSEHistogramObserver

    act = dataclasses.replace(config.input_activation,
                              observer_or_fake_quant_ctr=MSEHistogramObserver.with_args(eps=2**-12))
    return dataclasses.replace(config, input_activation=act, output_activation=act)


# Ops that map a tensor element by element (layout ops: numerics.LAYOUT_OPS).
_ELEMENTWISE_OPS = frozenset({"add", "sub", "mul", "div", "neg", "sigmoid", "relu", "hardtanh", "clamp", "gelu",
                              "silu", "hardswish", "tanh", "abs"})


def _call_name(node: Any) -> str | None:
    """:func:`numerics.op_name` of a call node; None for anything else (inputs, constants)."""
    return op_name(node) if isinstance(node, Node) and node.op == "call_function" else None


def reads_relaid_tensor(conv: Node, depth: int = 16) -> bool:
    """Whether ``conv``'s input was reshaped or permuted since the last layer that computed it.

    Looks through element-wise ops (any of their tensor inputs) up to ``depth`` nodes back.
    ExecuTorch 1.5.1's XNNPACK delegate lowers a dynamically quantized conv whose input is
    such a tensor into a ``.pte`` that fails at run time ("Propagating input shapes
    failed"): in DoTCoM, each DoT block's ``conv_out`` after the patches are folded back.
    """
    stack, seen = [conv.args[0]], 0
    while stack and seen < depth:
        node = stack.pop()
        seen += 1
        name = _call_name(node)
        if name in LAYOUT_OPS:
            return True
        if name in _ELEMENTWISE_OPS:
            stack += [a for a in node.args if isinstance(a, Node)]
    return False


def _is_conv(node: Node) -> bool:
    return _call_name(node) in ("conv2d", "convolution", "conv1d")


def xnnpack_quantizer(*, dynamic: bool = False, qat: bool = False, skip: SkipFn | None = None,
                      observer: str = "mse"):
    """XNNPACK int8 (static, or dynamic for linear and dense conv layers), per-channel weights, SiLU in int8.

    Dynamic: a conv that reads a reshaped or permuted tensor stays fp32
    (:func:`reads_relaid_tensor`); XNNPACK cannot run it with a dynamically quantized input.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import get_symmetric_quantization_config

    config = get_symmetric_quantization_config(is_per_channel=True, is_qat=qat, is_dynamic=dynamic)
    if not (qat or dynamic):
        config = _with_observer(config, observer)
    quantizer = _xnnpack_quantizer_class()().set_global(config)
    if dynamic:
        user_skip = skip
        skip = lambda n: (_is_conv(n) and reads_relaid_tensor(n)) or bool(user_skip and user_skip(n))  # noqa: E731
    if skip is not None:
        quantizer.set_filter_function(_keep(skip))
    return quantizer


def _cache_coreml_patterns() -> None:
    """Trace each of the Core ML quantizer's pattern graphs once per machine, not per call.

    ``CoreMLQuantizer.annotate`` builds every pattern it matches (conv/linear x batch norm
    x 17 activations, binary ops x activations: 405 of them) by tracing a small module
    through ``torch.export``, on every call: about 90 s per ``prepare`` on 2 cores. A
    pattern is a function of its code, the functions it closes over and its example
    inputs' shapes, so the traced graph is kept under that key, in this process and on
    disk (:mod:`.pattern_cache`), and a copy handed out (the matcher rewrites the
    pattern's output node in place). A second quantization in the same process
    (``--keep-fp32 N`` runs PTQ twice; the tests run several) costs no tracing, and a
    later process reads the graphs instead of tracing them. Patterns the cache cannot
    name are traced as before.
    """
    import copy

    from executorch.backends.apple.coreml.quantizer import _coreml_quantizer_utils as utils

    from dotcom_mobile.quantize import pattern_cache

    if getattr(utils._get_aten_graph_module, "_dotcom_cached", False):
        return
    trace = utils._get_aten_graph_module
    cache: dict[str, Any] = {}

    def cached(pattern, example_inputs, is_cuda=False):
        try:
            key = pattern_cache.pattern_key(pattern, example_inputs, is_cuda)
        except (pattern_cache.Uncacheable, AttributeError, ValueError):  # an empty cell, a non-tensor input
            return trace(pattern, example_inputs, is_cuda)
        if key not in cache:
            gm = pattern_cache.load(key)
            if gm is None:
                gm = trace(pattern, example_inputs, is_cuda)
                pattern_cache.store(key, gm)
            cache[key] = gm
        return copy.deepcopy(cache[key])

    cached._dotcom_cached = True  # type: ignore[attr-defined]
    utils._get_aten_graph_module = cached


@contextlib.contextmanager
def regenerate_once(model: GraphModule) -> Iterator[None]:
    """Within the block, ``model`` regenerates its Python code once, at the end.

    ExecuTorch's Core ML annotators run ``graph.eliminate_dead_code()`` and
    ``model.recompile()`` before matching each of their 405 patterns. Annotating only
    writes ``node.meta``, so after the first pass the graph no longer changes, yet each
    recompile prints and compiles the whole model's Python again: on DoTCoM-Tiny (1,500
    nodes) that was ~75% of a Core ML ``prepare_pt2e`` (cProfile, AMD EPYC Zen 3: 77 of
    107 s in 1,621 recompiles, 18 s in 405 dead-code passes). Here dead-code elimination
    runs again only when the node set or a user count changed since it last ran, and the
    code is regenerated once when the block ends, whatever happened inside it: the graph,
    which is what the matcher reads, is always current.
    """
    graph = model.graph
    eliminate = graph.eliminate_dead_code
    clean: tuple | None = None

    def shape() -> tuple:
        return tuple((id(n), len(n.users)) for n in graph.nodes)

    def eliminate_dead_code(*args: Any, **kwargs: Any) -> bool:
        nonlocal clean
        if clean is not None and shape() == clean:
            return False
        changed = eliminate(*args, **kwargs)
        clean = shape()
        return changed

    graph.eliminate_dead_code = eliminate_dead_code  # type: ignore[method-assign]
    model.recompile = lambda: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        del graph.eliminate_dead_code
        del model.recompile
        model.recompile()


def coreml_quantizer(*, dynamic: bool = False, qat: bool = False, skip: SkipFn | None = None,
                     observer: str = "mse"):
    """ExecuTorch's CoreMLQuantizer with the 8-bit symmetric config of its docs (iOS 17+).

    ``observer`` does not apply: coremltools' config chooses its own activation observers.
    """
    import torch
    from coremltools.optimize.torch.quantization.quantization_config import (
        LinearQuantizerConfig,
        QuantizationScheme,
    )
    from executorch.backends.apple.coreml.quantizer import CoreMLQuantizer

    if dynamic:
        raise DotcomError("--dynamic is an XNNPACK scheme; Core ML quantizes activations statically")
    _cache_coreml_patterns()
    config = LinearQuantizerConfig.from_dict({
        "global_config": {
            "quantization_scheme": QuantizationScheme.symmetric,
            "activation_dtype": torch.quint8,
            "weight_dtype": torch.qint8,
            "weight_per_channel": True,
        }
    })

    class _Quantizer(CoreMLQuantizer):
        """CoreMLQuantizer that regenerates the model's code once per annotation, not once
        per pattern (:func:`regenerate_once`), and whose every annotation pass honours ``skip``."""

        def annotate(self, model):  # type: ignore[override]
            with regenerate_once(model):
                return super().annotate(model)

        def _annotate_all_patterns(self, model, quantization_config, filter_fn=None):  # type: ignore[override]
            if skip is None:
                return super()._annotate_all_patterns(model, quantization_config, filter_fn)
            keep = _keep(skip)
            both = (lambda n: keep(n) and filter_fn(n)) if filter_fn is not None else keep
            return super()._annotate_all_patterns(model, quantization_config, both)

    return _Quantizer(config)


_FACTORIES = {"xnnpack": xnnpack_quantizer, "coreml": coreml_quantizer}


def make_quantizer(backend: str, *, dynamic: bool = False, qat: bool = False, skip: SkipFn | None = None,
                   observer: str = "mse"):
    """The PT2E quantizer of ``backend`` (``skip``: nodes to leave in fp32)."""
    spec = check_backend(backend)
    quiet_torch_logs()
    if dynamic and not spec.supports_dynamic:
        raise DotcomError(f"--dynamic is not supported for {backend} (XNNPACK only)")
    if dynamic and qat:
        raise DotcomError("--dynamic and --qat-epochs cannot be combined (QAT trains static activation ranges)")
    if observer not in ACT_OBSERVERS:
        raise DotcomError(f"unknown observer {observer!r} (choose from {', '.join(ACT_OBSERVERS)})")
    return _FACTORIES[backend](dynamic=dynamic, qat=qat, skip=skip, observer=observer)


def _get_attr(gm: GraphModule, target: str) -> torch.Tensor:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _static_scale(node: Any, op: str) -> Any:
    """The scale argument of a ``quantized_decomposed.<op>`` node with static qparams, else None."""
    if isinstance(node, Node) and node.op == "call_function" and getattr(node.target, "__name__", "").startswith(op):
        return node.args[1]
    return None


def snap_bias_to_int32(gm: GraphModule) -> int:
    """Round every float conv/linear bias of a static int8 graph onto XNNPACK's int32 grid.

    ``convert_pt2e`` leaves biases in fp32, but the XNNPACK delegate quantizes each to
    int32 at scale ``input_scale * weight_scale[c]`` while lowering
    (``QuantParams.from_bias``). That rounding moves a pre-requantisation value by up
    to half a bias step, which flips the int8 rounding of about 1 output in 5000 (the
    stem of a trained DoTCoM-Tiny: 23 of 131072); later layers amplify every flip until
    the ``.pte`` and the eager module differ by as much as int8 and fp32 do (26 dB).
    Snapping the eager module's biases to the same grid (with the same
    ``quantize_per_channel`` op) makes the stem bit-exact and the whole model agree
    to 30+ dB. The lowering then re-quantizes an exact grid value, so the ``.pte`` is
    unchanged. Returns how many biases were snapped; dynamic-activation layers
    (run-time scales) keep float biases, as XNNPACK does.
    """
    qd = torch.ops.quantized_decomposed
    snapped = 0
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default):
            continue
        if len(node.args) < 3 or not isinstance(node.args[2], Node) or node.args[2].op != "get_attr":
            continue
        x, w, b = node.args[:3]
        s_in = _static_scale(x, "dequantize_per_tensor")
        if not isinstance(s_in, float):
            continue
        if _static_scale(w, "dequantize_per_channel") is not None:
            w_scale = _get_attr(gm, w.args[1].target)
        elif isinstance(_static_scale(w, "dequantize_per_tensor"), float):
            w_scale = torch.tensor([w.args[1]])
        else:
            continue
        bias = _get_attr(gm, b.target)
        scale = (w_scale * s_in).to(torch.float32).expand(bias.shape[0]).contiguous()
        zp = torch.zeros(bias.shape[0], dtype=torch.int64)
        lo, hi = -(2**31), 2**31 - 1
        with torch.no_grad():
            q = qd.quantize_per_channel.default(bias.detach(), scale, zp, 0, lo, hi, torch.int32)
            bias.copy_(qd.dequantize_per_channel.default(q, scale, zp, 0, lo, hi, torch.int32))
        snapped += 1
    return snapped


def _dynamic_chains(gm: GraphModule) -> list[tuple[Node, Node]]:
    """(dequantize, choose_qparams) of every ``choose_qparams -> quantize -> dequantize`` chain."""
    qd = torch.ops.quantized_decomposed
    chains = []
    for dq in gm.graph.nodes:
        if dq.op != "call_function" or dq.target != qd.dequantize_per_tensor.tensor:
            continue
        q = dq.args[0]
        scale = q.args[1] if isinstance(q, Node) and len(q.args) > 1 else None  # getitem(choose_qparams, 0)
        choose = scale.args[0] if isinstance(scale, Node) and scale.args else None
        if isinstance(choose, Node) and choose.target == qd.choose_qparams.tensor:
            chains.append((dq, choose))
    return chains


def split_shared_dynamic_quant(gm: GraphModule) -> int:
    """Give every consumer of a dynamically quantized activation its own quantize chain.

    ``convert_pt2e`` quantizes an activation that feeds several dynamic-int8 layers once
    (``choose_qparams -> quantize -> dequantize``) and hands the one dequantize to all of
    them. ExecuTorch 1.5.1's XNNPACK delegate lowers that shared value wrongly when the
    layers differ: a QG block's 3x3 conv and its 1x1 shortcut both read the block input,
    and the ``.pte`` either fails at run time ("Propagating input shapes failed",
    stride 2 with a SiLU between the convs) or computes something else (12 dB against
    fp32 at stride 1). With one chain per consumer each conv gets the dynamically
    quantized input XNNPACK expects for it, and the same numbers come out (the chains
    compute the same scale from the same tensor). Returns how many chains were added.
    """
    import operator

    g = gm.graph
    added = 0
    for dq, choose in _dynamic_chains(gm):
        q = dq.args[0]
        for user in list(dq.users)[1:]:
            with g.inserting_before(user):
                choose2 = g.node_copy(choose)
                scale = g.call_function(operator.getitem, (choose2, 0))
                zero = g.call_function(operator.getitem, (choose2, 1))
                q2 = g.call_function(q.target, (q.args[0], scale, zero, *q.args[3:]))
                dq2 = g.call_function(dq.target, (q2, scale, zero, *dq.args[3:]))
            user.replace_input_with(dq, dq2)
            added += 1
    if added:
        g.lint()
        gm.recompile()
    return added


def _dynamic_fake_quant(x: torch.Tensor, rows: str, quant_min: int, quant_max: int, eps: float) -> torch.Tensor:
    """``x`` through int8 with one (scale, zero point) per ``rows``: ``"image"`` (per batch
    element), ``"pixel"`` (per position of an NCHW tensor, over its channels) or ``"row"``
    (per row of the last dim).

    The arithmetic of ``quantized_decomposed.choose_qparams.tensor`` and
    ``quantize_per_tensor`` (asymmetric, zero included in the range, scale at least ``eps``),
    applied to each row on its own.
    """
    from torch.ao.quantization.utils import determine_qparams

    if rows == "pixel":
        y = x.permute(0, 2, 3, 1)
        flat = y.reshape(-1, y.shape[-1])
    else:
        flat = x.reshape(-1, x.shape[-1]) if rows == "row" else x.reshape(x.shape[0], -1)
    lo, hi = torch.aminmax(flat, dim=1)
    scale, zero = determine_qparams(lo, hi, quant_min, quant_max, torch.int8, torch.tensor([eps]), False)
    step = scale.to(torch.float32).unsqueeze(1)
    inv = (1.0 / scale).to(torch.float32).unsqueeze(1)
    zero = zero.to(torch.float32).unsqueeze(1)
    out = (torch.clamp(torch.round(flat * inv) + zero, quant_min, quant_max) - zero) * step
    return out.reshape(y.shape).permute(0, 3, 1, 2) if rows == "pixel" else out.reshape(x.shape)


def _weight_shape(gm: GraphModule, w: Any) -> tuple[int, ...] | None:
    """Shape of a layer's weight argument: its traced value, or the constant behind its dequantize."""
    while isinstance(w, Node):
        if "val" in w.meta:
            return tuple(w.meta["val"].shape)
        if w.op == "get_attr":
            return tuple(_get_attr(gm, w.target).shape)
        w = w.args[0] if w.args else None
    return None


def _is_pointwise_conv(gm: GraphModule, conv: Node) -> bool:
    """A 1x1 conv with stride 1, no padding, one group: XNNPACK runs it as a fully connected layer."""
    shape = _weight_shape(gm, conv.args[1])
    args = list(conv.args) + [None] * 7
    stride, padding, dilation, groups = args[3] or [1, 1], args[4] or [0, 0], args[5] or [1, 1], args[6] or 1
    return (shape is not None and shape[2:] == (1, 1) and set(stride) == {1} and set(padding) == {0}
            and set(dilation) == {1} and groups == 1)


def _dynamic_rows(gm: GraphModule, consumer: Node) -> str:
    if not _is_conv(consumer):
        return "row"
    return "pixel" if _is_pointwise_conv(gm, consumer) else "image"


def as_xnnpack_runs_it(converted: GraphModule) -> GraphModule:
    """A copy of ``converted`` whose dynamic quantization is XNNPACK's: one scale per image,
    per pixel or per row, as its kernel for the consuming layer picks.

    PT2E's dynamic quantization picks one scale for the whole tensor, so in a batch of
    evaluation images one image's range sets the others' scales, and all tokens of a
    linear layer share one. XNNPACK's dynamic kernels choose one scale per image for a
    conv, per row (token) for a fully connected layer, and per pixel for a 1x1 conv
    (which it runs as a fully connected layer); measured against the ``.pte`` in
    tests/test_quantize_dynamic.py. The lowering reads the graph's per-tensor pattern, so
    the saved program keeps it; this copy is what evaluation runs, so the report's SQNR
    is the ``.pte``'s. Static layers are unchanged.
    """
    import copy

    if not _dynamic_chains(converted):
        return converted
    gm = copy.deepcopy(converted)
    g = gm.graph
    for dq, choose in _dynamic_chains(gm):
        x, quant_min, quant_max, eps = choose.args[:4]
        kinds = {_dynamic_rows(gm, u) for u in dq.users}
        rows = kinds.pop() if len(kinds) == 1 else "image"  # shared chains are split before (finish_convert)
        with g.inserting_before(dq):
            fq = g.call_function(_dynamic_fake_quant, (x, rows, quant_min, quant_max, eps))
        dq.replace_all_uses_with(fq)
    g.eliminate_dead_code()
    g.lint()
    gm.recompile()
    return gm


def finish_convert(converted: GraphModule, quantizer: Any) -> GraphModule:
    """The backend's step after ``convert_pt2e``.

    XNNPACK: :func:`snap_bias_to_int32` (static layers) and
    :func:`split_shared_dynamic_quant` (dynamic ones).
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    if isinstance(quantizer, XNNPACKQuantizer):
        snap_bias_to_int32(converted)
        split_shared_dynamic_quant(converted)
    return converted
