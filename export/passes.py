"""Which of ExecuTorch's lowering work cannot change a program, and how it is left out.

Lowering DoTCoM-Tiny's int8 program (about 1,800 nodes, 1,200 of them quantize and
dequantize) took 50 s on 2 cores, and most of it was not lowering: about thirty passes,
decompositions and re-traces each interpret the *whole* graph through fake tensors
(1.2-2.5 s apiece, 7 s for a decomposition), whether or not they find anything to do.
Four kinds of that work are left out here, each only when it provably changes nothing:

* **XNNPACK delegate passes whose ops are absent** (:func:`xnnpack_pass_triggers`),
  decided on the graph as it stands at the pass's turn; the two that re-compose an op
  from its decomposition are decided on the program as exported.
* **Edge passes whose ops are absent** (:func:`edge_pass_triggers`): ExecuTorch's
  aten-to-edge passes that rewrite one op at a time (``t`` -> ``t_copy``, scalars ->
  tensors, mixed dtypes -> casts, ...). Each is tested by its own rule, applied to the graph.
* **Re-traces of a graph a pass left as it was** (:func:`_unchanged_retrace_skipped`): many
  XNNPACK passes edit the graph in ``call`` and then re-trace it through ``ExportPass``
  to refresh metadata. When the edit found nothing (no [add]mm to turn into linear, no
  no-op expand, no redundant copy pair), the re-trace would rebuild the same graph; when
  it only took ops out whose output was their input's (a ReLU fused into its conv), it
  would recompute the metadata every node left already has.
* **The second decomposition** (:func:`_one_decomposition`): ExecuTorch functionalises
  the program (``run_decompositions({})``), then decomposes it with the table left after
  the partitioner's kept ops. One ``run_decompositions`` with that table does both.

Every skip is a filter around ExecuTorch's own functions, restored on exit; what runs is
ExecuTorch's code unchanged. The ``.pte`` is byte-identical with and without the skips
(tests/test_export_passes.py, tests/test_export_xnnpack.py); ``DOTCOM_XNNPACK_ALL_PASSES=1``
turns all of them off, to compare.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

Trigger = Callable[[Any], bool]  # graph -> "could the pass change anything here"

# XNNPACK delegate passes that only re-compose an op from its decomposition, and the
# aten op (by name) without which the program cannot contain that decomposition.
_RECOMPOSING_PASSES = {"ConvertToUpsampleBilinear2d": "upsample_bilinear2d",
                       "ConvertToSDPAPass": "scaled_dot_product_attention"}


def _calls(graph: Any) -> Iterator[Any]:
    return (n for n in graph.nodes if n.op == "call_function")


def _any_of(targets: Any) -> Trigger:
    targets = set(targets)
    return lambda graph: any(n.target in targets for n in _calls(graph))


def _any_named(*names: str) -> Trigger:
    return lambda graph: any(getattr(n.target, "__name__", "") in names for n in _calls(graph))


def xnnpack_pass_triggers() -> dict[str, Trigger]:
    """For XNNPACK delegate passes that can only act on certain ops: graph -> "could it change anything".

    The ops are taken from the passes' own tables where they have one, so a pass that
    learns a new op keeps being run for it. Checked on the graph as it is when the
    pass's turn comes: ``RemoveRedundantCopyPass`` acts on the copies
    ``ChannelsLastTaggedReshapePass`` has just inserted.
    """
    from executorch.backends.transforms.remove_clone_ops import RemoveCloneOpsTransform
    from executorch.backends.xnnpack._passes.decompose_batch_norm import DecomposeBatchNorm
    from executorch.backends.xnnpack._passes.fuse_activation_pass import FuseActivationPass
    from executorch.backends.xnnpack._passes.remove_noop_expand_copy_pass import RemoveNoopExpandCopyPass
    from executorch.exir.passes.dim_order_ops_registry import MemoryFormatOpsMap
    from executorch.backends.xnnpack.utils.quant_utils import is_dequant, is_quant

    def conv1d(graph: Any) -> bool:  # the pass's own test: a rank-3 kernel (a dequantized one has its shape)
        def rank(kernel: Any) -> int:
            val = getattr(kernel, "meta", {}).get("val")
            return val.dim() if val is not None else 3  # unknown: let the pass look
        return any(getattr(n.target, "__name__", "") == "aten.convolution.default" and rank(n.args[1]) == 3
                   for n in _calls(graph))

    def wide_cat(graph: Any) -> bool:  # XNNPACK concatenates up to 5 inputs in one node
        return any(getattr(n.target, "__name__", "") == "aten.cat.default" and len(n.args[0]) > 5
                   for n in _calls(graph))

    def foldable(graph: Any) -> bool:
        # ConstPropPass folds an op (q/dq excepted) when every argument is a constant. In
        # its re-trace a placeholder or an op's output is a traced value, never one; only
        # attributes and literals are. So: an op none of whose inputs is anything else.
        return any(not (is_quant(n) or is_dequant(n)) and all(i.op == "get_attr" for i in n.all_input_nodes)
                   for n in _calls(graph))

    noop_expand = RemoveNoopExpandCopyPass()._is_noop_expand_copy
    batch_norm = _any_of(DecomposeBatchNorm.BATCH_NORM_OPS)
    return {
        "XNNPACKRemoveCloneOpsTransform": _any_of(RemoveCloneOpsTransform.clone_ops),
        "DimOrderOpsRevertPass": _any_of(MemoryFormatOpsMap),
        "FuseBatchNormPass": batch_norm,
        "DecomposeBatchNorm": batch_norm,
        "FuseActivationPass": _any_of(FuseActivationPass.FUSEABLE_ACTIVATIONS),
        "DecomposeConcatenate": wide_cat,
        "RemoveGetItemPass": _any_named("aten.max_pool2d_with_indices.default", "aten.max.dim"),
        "InsertPadQDQPass": _any_named("aten.constant_pad_nd.default"),
        "Conv1dUnsqueezePass": conv1d,
        "PReLUReshapePass": _any_named("aten._prelu_kernel.default"),
        "RemoveRedundantCopyPass": _any_named("aten._to_copy.default"),
        "RemoveNoopExpandCopyPass": lambda graph: any(noop_expand(n) for n in _calls(graph)),
        "ConstPropPass": foldable,
    }


def edge_pass_triggers() -> dict[str, Trigger]:
    """ExecuTorch's aten-to-edge passes that rewrite single ops: graph -> "could it change anything".

    Each of them re-traces the whole graph and rewrites an op only on its own condition,
    written here as the pass writes it: a ``t`` op; a view op (after views became view
    copies); a Python scalar where the schema wants a tensor; a symbolic scalar where it
    wants a tensor; operands of two dtypes (or of an integer dtype in a true division).
    """
    from executorch.exir.pass_base import map_args

    def op_calls(graph: Any) -> Iterator[Any]:
        return (n for n in _calls(graph) if isinstance(n.target, torch._ops.OpOverload))

    def tensor_args_where(graph: Any, wanted: Callable[[Any], bool]) -> bool:
        found = []

        def look(value: Any, arg: Any) -> Any:
            if isinstance(arg.type, torch.TensorType) and wanted(value):
                found.append(value)
            return value

        for n in op_calls(graph):
            map_args(n.target, look, tuple(n.args), dict(n.kwargs))
            if found:
                return True
        return False

    def scalar(value: Any) -> bool:
        return isinstance(value, (float, int, bool))

    def symbolic(value: Any) -> bool:
        if not isinstance(value, torch.fx.Node):
            return False
        val = value.meta.get("val")
        return not isinstance(val, torch.Tensor)  # a SymInt/SymFloat/SymBool, or unknown: let the pass look

    aten = torch.ops.aten
    divisions = {aten.div.Tensor, aten.div.Tensor_mode}
    # RemoveMixedTypeOperators' own list: the binary ops whose operands it casts to one dtype.
    promoting = {aten.add.Tensor, aten.mul.Tensor, aten.sub.Tensor, aten.minimum.default} | divisions

    def mixed(graph: Any) -> bool:
        for n in _calls(graph):
            if n.target not in promoting or len(n.args) <= 1:
                continue
            vals = [a.meta.get("val") if isinstance(a, torch.fx.Node) else a for a in n.args]
            if not all(isinstance(v, torch.Tensor) for v in vals):
                return True
            dtypes = {v.dtype for v in vals}
            if len(dtypes) > 1 or (n.target in divisions and not next(iter(dtypes)).is_floating_point):
                return True
        return False

    from executorch.exir.passes.legalize_portable_dim_order_pass import LegalizePortableDimOrderPass

    return {
        "NormalizeTransposePass": _any_of([torch.ops.aten.t.default]),
        "ReplaceBrokenOpsWithFunctionalOpsPass": lambda graph: any(n.target.is_view for n in op_calls(graph)),
        "ScalarToTensorPass": lambda graph: tensor_args_where(graph, scalar),
        "SymToTensorPass": lambda graph: tensor_args_where(graph, symbolic),
        "RemoveMixedTypeOperators": mixed,
        # Run by to_executorch on what is left outside the delegates: a contiguous copy
        # before the portable ops (pooling, mean, sum, expand) that need one.
        "LegalizePortableDimOrderPass": _any_of(LegalizePortableDimOrderPass._target_ops),
    }


def _name(pass_: Any) -> str:
    """A pass's class name, also through the function a pass manager wraps it in (it keeps the name)."""
    return pass_.__name__ if inspect.isfunction(pass_) else type(pass_).__name__


class _IfNeeded:
    """A pass that is run only when its trigger says the graph has something for it."""

    def __init__(self, pass_: Callable, trigger: Trigger) -> None:
        self.pass_, self.trigger = pass_, trigger

    def __call__(self, graph_module: Any) -> Any:
        from torch.fx.passes.infra.pass_base import PassResult

        if self.trigger(graph_module.graph):
            return self.pass_(graph_module)
        return PassResult(graph_module, False)


def _structure(graph: Any) -> list[tuple]:
    """What a re-trace would rebuild: every node's kind, name, target and arguments."""
    name = lambda n: n.name  # noqa: E731
    return [(n.op, n.name, n.target, torch.fx.node.map_arg(n.args, name), torch.fx.node.map_arg(n.kwargs, name))
            for n in graph.nodes]


def _layout(node: Any) -> tuple | None:
    val = node.meta.get("val")
    return (tuple(val.shape), val.dtype, tuple(val.stride())) if isinstance(val, torch.Tensor) else None


@dataclass(frozen=True)
class _Snapshot:
    """A graph's structure when a pass's turn came, and each node's output layout then."""

    structure: list[tuple]
    layouts: dict[str, tuple | None]

    @classmethod
    def of(cls, graph: Any) -> "_Snapshot":
        return cls(_structure(graph), {n.name: _layout(n) for n in graph.nodes})


def _plain(value: Any, rename: Callable[[str], str] = lambda name: name) -> Any:
    if isinstance(value, str):
        return rename(value)
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v, rename) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v, rename) for k, v in value.items()}
    return value


def _only_elided(snapshot: _Snapshot, now: list[tuple]) -> bool:
    """Is ``now`` (a graph's :func:`_structure`) the snapshot's graph with some ops taken out and nothing else changed?

    Each op taken out must have had its users rewired to its first input, and that input
    must have had the op's own shape, dtype and strides: FuseActivationPass does this with
    a ReLU it fuses into the conv before it. A re-trace of such a graph recomputes, for
    every node left, the metadata it already has.
    """
    names = {entry[1] for entry in now}
    removed = [entry for entry in snapshot.structure if entry[1] not in names]
    if not removed or len(removed) + len(now) != len(snapshot.structure):
        return False
    forward: dict[str, str] = {}
    for op, name, _, args, _ in removed:
        if op != "call_function" or not args or not isinstance(args[0], str):
            return False
        forward[name] = args[0]

    def resolve(name: str) -> str:
        for _ in range(len(forward) + 1):
            if name not in forward:
                return name
            name = forward[name]
        return name  # a cycle: cannot happen in a graph; the comparison below fails then

    for name in forward:
        layout = snapshot.layouts.get(name)
        if layout is None or layout != snapshot.layouts.get(resolve(name)):
            return False
    rebuilt = [(op, name, target, _plain(args, resolve), _plain(kwargs, resolve))
               for op, name, target, args, kwargs in snapshot.structure if name not in forward]
    return rebuilt == [(op, name, target, _plain(args), _plain(kwargs)) for op, name, target, args, kwargs in now]


# ExportPass's interpretation hooks: a pass overriding none of them re-traces to refresh
# metadata only, so its re-trace of an unchanged graph rebuilds that graph.
_HOOKS = ("call_operator", "placeholder", "output", "call_submodule", "call_getitem", "call_cond", "call_map",
          "call_sym", "call_delegate", "call_scan", "call_while", "call_shape_env_op")


@contextlib.contextmanager
def _unchanged_retrace_skipped(before: dict[int, _Snapshot]) -> Iterator[None]:
    """``ExportPass.call`` returns the graph as it is when a pass's edit cannot change its metadata.

    ``before`` maps a running pass (by ``id``) to the graph when its turn came. The re-trace
    is left out when the pass edited nothing, or only took ops out whose output was their
    input's (:func:`_only_elided`).
    """
    from executorch.exir.pass_base import ExportPass, _ExportPassBase
    from torch.fx.passes.infra.pass_base import PassResult

    original = _ExportPassBase.call

    def call(self, graph_module):  # type: ignore[no-untyped-def]
        snapshot = before.get(id(self))
        if snapshot is not None and all(getattr(type(self), h, None) is getattr(ExportPass, h, None) for h in _HOOKS):
            now = _structure(graph_module.graph)
            if now == snapshot.structure:
                return PassResult(graph_module, False)
            if _only_elided(snapshot, now):
                graph_module.graph.lint()
                return PassResult(graph_module, True)
        return original(self, graph_module)

    _ExportPassBase.call = call
    try:
        yield
    finally:
        _ExportPassBase.call = original


@contextlib.contextmanager
def _one_decomposition() -> Iterator[None]:
    """Functionalise and decompose in one ``run_decompositions`` instead of two.

    ExecuTorch calls the partitioner's pre-decomposition hook, then
    ``run_decompositions({})``, then asks the partitioner which ops to keep and decomposes
    with the default table less those, unless no op of that table is left in the graph.
    Here the hook's result is decomposed at once with that table, and the ``{}`` call on
    that result returns it as it is (it is already functional): ExecuTorch then finds no
    op to decompose and skips its own. Only for a single partitioner without a per-node
    check, the path where ExecuTorch uses exactly that table.
    """
    from executorch.exir.program import _program
    from executorch.exir.tracer import _default_decomposition_table
    from torch.export import ExportedProgram

    done: weakref.WeakSet = weakref.WeakSet()
    original_pre, original_run = _program._apply_pre_decomposition_transforms, ExportedProgram.run_decompositions

    def pre(program, partitioners):  # type: ignore[no-untyped-def]
        program = original_pre(program, partitioners)
        if len(partitioners) != 1:
            return program
        keep, check = partitioners[0].ops_to_not_decompose(program)
        if check is not None:
            return program
        table = _default_decomposition_table()
        for op in keep:
            table.pop(op, None)
        program = original_run(program, table)
        done.add(program)
        return program

    def run_decompositions(self, decomp_table=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        if decomp_table == {} and not args and not kwargs and self in done:
            return self
        return original_run(self, decomp_table, *args, **kwargs)

    _program._apply_pre_decomposition_transforms = pre
    ExportedProgram.run_decompositions = run_decompositions
    try:
        yield
    finally:
        _program._apply_pre_decomposition_transforms = original_pre
        ExportedProgram.run_decompositions = original_run


@contextlib.contextmanager
def _edge_passes_filtered() -> Iterator[None]:
    """ExecuTorch's aten-to-edge passes, each behind its trigger (see :func:`edge_pass_triggers`)."""
    from executorch.exir.program import _program

    triggers = edge_pass_triggers()
    original, original_et = _program._get_aten_to_edge_passes, _program.edge_to_executorch_passes

    def filtered(passes: list) -> list:
        return [_IfNeeded(p, triggers[_name(p)]) if _name(p) in triggers else p for p in passes]

    def aten_to_edge(config):  # type: ignore[no-untyped-def]
        pre, post = original(config)
        return filtered(pre), post

    def edge_to_executorch(*args, **kwargs):  # type: ignore[no-untyped-def]
        return filtered(original_et(*args, **kwargs))

    _program._get_aten_to_edge_passes, _program.edge_to_executorch_passes = aten_to_edge, edge_to_executorch
    try:
        yield
    finally:
        _program._get_aten_to_edge_passes, _program.edge_to_executorch_passes = original, original_et


@contextlib.contextmanager
def _xnnpack_passes_filtered(ep: Any, before: dict[int, _Snapshot]) -> Iterator[None]:
    """XNNPACK's delegate passes, each behind its trigger, with its structure noted for the re-trace check."""
    from executorch.backends.xnnpack import _passes

    triggers = xnnpack_pass_triggers()
    # A re-composing pass is decided on the program as exported (the delegated graph holds
    # only the decomposition it would match): never run when the op was not there.
    present = " ".join(str(n.target) for n in ep.graph.nodes if n.op == "call_function")
    triggers.update({name: lambda graph: False for name, op in _RECOMPOSING_PASSES.items() if op not in present})
    original = _passes._transform

    def _transform(program, *passes):  # the pass manager applies its passes one at a time through this
        for p in passes:
            graph = program.graph_module.graph
            if triggers.get(type(p).__name__, lambda g: True)(graph):
                before[id(p)] = _Snapshot.of(graph)
                program = original(program, p)
                del before[id(p)]
        return program

    _passes._transform = _transform
    try:
        yield
    finally:
        _passes._transform = original


def xnnpack_transform_passes() -> list:
    """XNNPACK's edge transform passes (``to_edge_transform_and_lower(transform_passes=...)``), behind their triggers."""
    from executorch.backends.xnnpack.utils.configs import get_transform_passes

    passes = list(get_transform_passes())
    if os.environ.get("DOTCOM_XNNPACK_ALL_PASSES") == "1":
        return passes
    triggers = xnnpack_pass_triggers()
    return [_IfNeeded(p, triggers[_name(p)]) if _name(p) in triggers else p for p in passes]


@contextlib.contextmanager
def lean_xnnpack_lowering(ep: Any) -> Iterator[None]:
    """``to_edge_transform_and_lower`` of ``ep`` to XNNPACK without the work that cannot change it."""
    if os.environ.get("DOTCOM_XNNPACK_ALL_PASSES") == "1":
        yield
        return
    before: dict[int, _Snapshot] = {}
    with _one_decomposition(), _edge_passes_filtered(), _xnnpack_passes_filtered(ep, before), \
            _unchanged_retrace_skipped(before):
        yield
