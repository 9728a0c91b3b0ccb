"""export/passes.py: the lowering work left out when it cannot change the program.

Small real modules are lowered twice, once as ``export`` does it and once with every pass,
re-trace and decomposition ExecuTorch runs (``DOTCOM_XNNPACK_ALL_PASSES=1``): the programs
must be byte-identical and must run. Each module holds what one skippable pass acts on (a
ReLU after a conv, a conv1d, a cat of six, a max pool, a Python scalar, operands of two
dtypes, a linear, a mean left outside the delegate), so a trigger that wrongly said
"nothing to do" would leave that op unconverted and change the bytes, or fail the lowering. The modules whose
pass cares about quantization are checked in int8 (the quantize room's XNNPACK quantizer:
the q/dq around every op are what FuseActivationPass, DecomposeConcatenate and
InsertPadQDQPass rewrite together with the op). The Tiny fp32 program
gets the same check in tests/test_export_xnnpack.py.
"""

from __future__ import annotations

import pytest
import torch

from dotcom_mobile.export.api import lower, run_program
from dotcom_mobile.export.passes import edge_pass_triggers, xnnpack_pass_triggers
from dotcom_mobile.export.targets import Options, resolve_targets


class ConvRelu(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return torch.relu(self.conv(x))


class Conv1d(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(3, 4, 3)

    def forward(self, x):
        return self.conv(x.flatten(2))


class WideCat(torch.nn.Module):
    def forward(self, x):
        return torch.cat([x * (i + 1) for i in range(6)], dim=1)


class MaxPool(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.max_pool2d(x, 2) * 2


class SiluOnly(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return torch.nn.functional.silu(self.conv(x))


class PadConv(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.conv(torch.nn.functional.pad(x, (1, 1, 1, 1)))


class ScalarsAndDtypes(torch.nn.Module):
    """A Python scalar operand, an int64 operand of a float add, a linear and a mean."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)

    def forward(self, x):
        y = self.fc(x * 0.5) + torch.arange(8)
        return y.sum(dim=-1, keepdim=True) + y.t().mean(dim=0)


def _edge_graph(module: torch.nn.Module, x: torch.Tensor):
    from executorch.exir import to_edge

    return to_edge(torch.export.export(module.eval(), (x,))).exported_program().graph_module.graph


X = torch.randn(1, 3, 8, 8)
ROWS = torch.randn(2, 8)


@pytest.mark.parametrize("module, acts, idle", [
    (ConvRelu(), {"FuseActivationPass"}, {"Conv1dUnsqueezePass", "DecomposeConcatenate", "RemoveGetItemPass"}),
    (Conv1d(), {"Conv1dUnsqueezePass"}, {"FuseActivationPass", "DecomposeConcatenate"}),
    (WideCat(), {"DecomposeConcatenate"}, {"Conv1dUnsqueezePass", "FuseActivationPass"}),
    (MaxPool(), {"RemoveGetItemPass"}, {"DecomposeConcatenate", "FuseBatchNormPass"}),
    (PadConv(), {"InsertPadQDQPass"}, {"RemoveGetItemPass", "FuseActivationPass"}),
    (SiluOnly(), set(), {"FuseActivationPass", "Conv1dUnsqueezePass", "DecomposeConcatenate", "PReLUReshapePass",
                         "FuseBatchNormPass", "DecomposeBatchNorm", "RemoveGetItemPass", "InsertPadQDQPass"}),
], ids=["conv-relu", "conv1d", "cat-of-6", "max-pool", "pad", "silu"])
def test_triggers_see_the_ops_their_pass_acts_on(module, acts, idle):
    graph = _edge_graph(module, X)
    triggers = xnnpack_pass_triggers()
    assert {name for name in acts | idle if triggers[name](graph)} == acts


class Transposed(torch.nn.Module):
    def forward(self, x):
        return x.flatten(1).t() + 1.0


class SymbolicScale(torch.nn.Module):
    def forward(self, x):
        return x * x.shape[0]


def _aten_graph(module: torch.nn.Module, x: torch.Tensor, dynamic: bool = False):
    """The graph the aten-to-edge passes see: exported, functional, before edge ops."""
    shapes = ({0: torch.export.Dim("batch", min=2)},) if dynamic else None
    return torch.export.export(module.eval(), (x,), dynamic_shapes=shapes).run_decompositions({}).graph


@pytest.mark.parametrize("module, x, acts, dynamic", [
    # A Python scalar operand also counts as a possible mixed dtype: ScalarToTensorPass, which
    # runs first, makes it a tensor (of int64 for an int), so the trigger lets the pass look.
    (Transposed(), X, {"NormalizeTransposePass", "ReplaceBrokenOpsWithFunctionalOpsPass", "ScalarToTensorPass",
                       "RemoveMixedTypeOperators"}, False),
    (ScalarsAndDtypes(), ROWS, {"ScalarToTensorPass", "RemoveMixedTypeOperators", "ReplaceBrokenOpsWithFunctionalOpsPass",
                                "NormalizeTransposePass"}, False),
    (SymbolicScale(), torch.randn(2, 3, 8, 8), {"SymToTensorPass", "RemoveMixedTypeOperators"}, True),
    (ConvRelu(), X, set(), False),
], ids=["transpose", "scalars-and-dtypes", "symbolic", "conv-relu"])
def test_edge_triggers_see_the_ops_their_pass_acts_on(module, x, acts, dynamic):
    graph = _aten_graph(module, x, dynamic)
    triggers = edge_pass_triggers()
    aten_passes = set(triggers) - {"LegalizePortableDimOrderPass"}
    assert {name for name in aten_passes if triggers[name](graph)} == acts


def test_dim_order_trigger_sees_a_portable_mean():
    triggers = edge_pass_triggers()["LegalizePortableDimOrderPass"]
    assert triggers(_edge_graph(ScalarsAndDtypes(), ROWS))
    assert not triggers(_edge_graph(ConvRelu(), X))


def _program(module: torch.nn.Module, int8: bool, x: torch.Tensor = X):
    """The ExportedProgram ``export`` lowers: the module itself, or its PT2E int8 form."""
    ep = torch.export.export(module.eval(), (x,))
    if not int8:
        return ep, module
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from dotcom_mobile.quantize.backends import make_quantizer

    prepared = prepare_pt2e(ep.module(), make_quantizer("xnnpack", observer="histogram"))
    prepared(x)
    converted = convert_pt2e(prepared)
    return torch.export.export(converted, (x,)), converted



@pytest.mark.slow
@pytest.mark.parametrize("module, int8, x", [
    (ConvRelu(), True, X), (ConvRelu(), False, X), (Conv1d(), False, X), (WideCat(), True, X), (MaxPool(), False, X),
    (PadConv(), True, X), (ScalarsAndDtypes(), False, ROWS), (ScalarsAndDtypes(), True, ROWS),
], ids=["conv-relu-int8", "conv-relu-fp32", "conv1d-fp32", "cat-of-6-int8", "max-pool-fp32", "pad-conv-int8", "scalars-fp32",
        "scalars-int8"])
def test_skipping_changes_no_byte_and_the_program_runs(module, int8, x, monkeypatch):
    target = resolve_targets("xnnpack")[0]
    opts = Options(quantized=int8)
    ep, reference = _program(module, int8, x)
    skipped, _ = lower(ep, target, opts)
    monkeypatch.setenv("DOTCOM_XNNPACK_ALL_PASSES", "1")
    full, _ = lower(_program(module, int8, x)[0], target, opts)
    assert skipped.buffer == full.buffer
    (out,) = run_program(skipped.buffer, [x])
    with torch.no_grad():
        expected = reference(x)
    # int8: the delegate and the eager q/dq graph may round a value to neighbouring levels.
    step = float(expected.max() - expected.min()) / 255
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=3 * step if int8 else 1e-4)


class ReluPermute(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return y.permute(0, 2, 3, 1) + 1.0, y


def _elide(graph, target) -> None:
    node = next(n for n in graph.nodes if n.target == target)
    node.replace_all_uses_with(node.args[0])
    graph.erase_node(node)


def test_only_elided_accepts_an_op_taken_out_whose_output_was_its_input():
    """The re-trace FuseActivationPass asks for is left out only for a graph a re-trace would not change."""
    from dotcom_mobile.export.passes import _only_elided, _Snapshot, _structure

    aten = torch.ops.aten

    def graph():
        return torch.export.export(ReluPermute().eval(), (X,)).graph

    g = graph()
    snapshot = _Snapshot.of(g)
    assert not _only_elided(snapshot, _structure(g))  # nothing taken out: the unchanged-graph check's case
    _elide(g, aten.relu.default)  # what FuseActivationPass does: conv's output has relu's layout
    assert _only_elided(snapshot, _structure(g))

    g = graph()
    snapshot = _Snapshot.of(g)
    _elide(g, aten.permute.default)  # permute's output has other strides and shape than its input's
    assert not _only_elided(snapshot, _structure(g))

    g = graph()
    snapshot = _Snapshot.of(g)
    _elide(g, aten.relu.default)
    add = next(n for n in g.nodes if n.target == aten.add.Tensor)
    add.args = (add.args[0], 2.0)  # and an edit besides: a re-trace would see it
    assert not _only_elided(snapshot, _structure(g))


def test_lean_lowering_leaves_out_what_it_says(monkeypatch):
    """Counted on a conv + ReLU: which passes ran, how many decompositions and whole-graph re-traces."""
    from executorch.exir.pass_base import _ExportPassBase
    from torch.export import ExportedProgram
    from torch.fx.passes.infra.pass_base import PassBase

    runs: list[str] = []
    counts = {"decompositions": 0, "retraces": 0}
    pass_call, decompose, retrace = PassBase.__call__, ExportedProgram.run_decompositions, _ExportPassBase.call_submodule

    def counted(key, fn):
        def wrapper(*args, **kwargs):
            counts[key] += 1
            return fn(*args, **kwargs)
        return wrapper

    def named(self, *args, **kwargs):
        runs.append(type(self).__name__)
        return pass_call(self, *args, **kwargs)

    monkeypatch.setattr(PassBase, "__call__", named)
    monkeypatch.setattr(ExportedProgram, "run_decompositions", counted("decompositions", decompose))
    monkeypatch.setattr(_ExportPassBase, "call_submodule", counted("retraces", retrace))
    target = resolve_targets("xnnpack")[0]

    def lowered() -> tuple[set[str], dict[str, int]]:
        runs.clear()
        counts.update(decompositions=0, retraces=0)
        lower(torch.export.export(ConvRelu().eval(), (X,)), target, Options())
        return set(runs), dict(counts)

    lean_runs, lean = lowered()
    monkeypatch.setenv("DOTCOM_XNNPACK_ALL_PASSES", "1")
    full_runs, full = lowered()
    left_out = {"NormalizeTransposePass", "ReplaceBrokenOpsWithFunctionalOpsPass", "ScalarToTensorPass",
                "SymToTensorPass", "RemoveMixedTypeOperators", "ConstPropPass", "FuseBatchNormPass",
                "LegalizePortableDimOrderPass", "RemoveNoopExpandCopyPass"}
    assert left_out <= full_runs and not left_out & lean_runs
    assert "FuseActivationPass" in lean_runs  # the ReLU is there to fuse
    # Full: functionalise, decompose, and the re-composing passes' own small programs.
    assert lean["decompositions"] == 1 and full["decompositions"] >= 2
    assert lean["retraces"] < full["retraces"] - len(left_out)  # fewer re-traces than the passes left out
