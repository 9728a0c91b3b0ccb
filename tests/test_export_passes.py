"""export/targets.py: the XNNPACK delegate passes left out when the graph has nothing for them.

Small real modules are lowered twice, once as ``export`` does it and once with every pass
(``DOTCOM_XNNPACK_ALL_PASSES=1``): the programs must be byte-identical and must run. Each
module holds what one skippable pass acts on (a ReLU after a conv, a conv1d, a cat of six,
a max pool), so a trigger that wrongly said "nothing to do" would leave that op
undecomposed or unfused and change the bytes, or fail the lowering. The modules whose
pass cares about quantization are checked in int8 (the quantize room's XNNPACK quantizer:
the q/dq around every op are what FuseActivationPass, DecomposeConcatenate and
InsertPadQDQPass rewrite together with the op). The Tiny fp32 program
gets the same check in tests/test_export_xnnpack.py.
"""

from __future__ import annotations

import pytest
import torch

from dotcom_mobile.export.api import lower, run_program
from dotcom_mobile.export.targets import Options, _xnnpack_pass_triggers, resolve_targets


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


def _edge_graph(module: torch.nn.Module, x: torch.Tensor):
    from executorch.exir import to_edge

    return to_edge(torch.export.export(module.eval(), (x,))).exported_program().graph_module.graph


X = torch.randn(1, 3, 8, 8)


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
    triggers = _xnnpack_pass_triggers()
    assert {name for name in acts | idle if triggers[name](graph)} == acts


def _program(module: torch.nn.Module, int8: bool):
    """The ExportedProgram ``export`` lowers: the module itself, or its PT2E int8 form."""
    ep = torch.export.export(module.eval(), (X,))
    if not int8:
        return ep, module
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from dotcom_mobile.quantize.backends import make_quantizer

    prepared = prepare_pt2e(ep.module(), make_quantizer("xnnpack", observer="histogram"))
    prepared(X)
    converted = convert_pt2e(prepared)
    return torch.export.export(converted, (X,)), converted


@pytest.mark.slow
@pytest.mark.parametrize("module, int8", [(ConvRelu(), True), (Conv1d(), False), (WideCat(), True), (MaxPool(), False),
                                          (PadConv(), True)],
                         ids=["conv-relu-int8", "conv1d-fp32", "cat-of-6-int8", "max-pool-fp32", "pad-conv-int8"])
def test_skipping_changes_no_byte_and_the_program_runs(module, int8, monkeypatch):
    target = resolve_targets("xnnpack")[0]
    opts = Options(quantized=int8)
    ep, reference = _program(module, int8)
    skipped, _ = lower(ep, target, opts)
    monkeypatch.setenv("DOTCOM_XNNPACK_ALL_PASSES", "1")
    full, _ = lower(_program(module, int8)[0], target, opts)
    assert skipped.buffer == full.buffer
    (out,) = run_program(skipped.buffer, [X])
    expected = reference(X)
    # int8: the delegate and the eager q/dq graph may round a value to neighbouring levels.
    step = float(expected.max() - expected.min()) / 255
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=3 * step if int8 else 1e-4)
