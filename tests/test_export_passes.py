"""export/targets.py: the XNNPACK delegate passes left out when the graph has nothing for them.

Small real modules are lowered twice, once as ``export`` does it and once with every pass
(``DOTCOM_XNNPACK_ALL_PASSES=1``): the programs must be byte-identical and must run. Each
module holds what one skippable pass acts on (a ReLU after a conv, a conv1d, a cat of six,
a max pool), so a trigger that wrongly said "nothing to do" would leave that op
undecomposed or unfused and change the bytes, or fail the lowering. The Tiny programs
get the same check in tests/test_export_xnnpack.py.
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


def _edge_graph(module: torch.nn.Module, x: torch.Tensor):
    from executorch.exir import to_edge

    return to_edge(torch.export.export(module.eval(), (x,))).exported_program().graph_module.graph


X = torch.randn(1, 3, 8, 8)


@pytest.mark.parametrize("module, acts, idle", [
    (ConvRelu(), {"FuseActivationPass"}, {"Conv1dUnsqueezePass", "DecomposeConcatenate", "RemoveGetItemPass"}),
    (Conv1d(), {"Conv1dUnsqueezePass"}, {"FuseActivationPass", "DecomposeConcatenate"}),
    (WideCat(), {"DecomposeConcatenate"}, {"Conv1dUnsqueezePass", "FuseActivationPass"}),
    (MaxPool(), {"RemoveGetItemPass"}, {"DecomposeConcatenate", "FuseBatchNormPass"}),
    (SiluOnly(), set(), {"FuseActivationPass", "Conv1dUnsqueezePass", "DecomposeConcatenate", "PReLUReshapePass",
                         "FuseBatchNormPass", "DecomposeBatchNorm", "RemoveGetItemPass", "InsertPadQDQPass"}),
], ids=["conv-relu", "conv1d", "cat-of-6", "max-pool", "silu"])
def test_triggers_see_the_ops_their_pass_acts_on(module, acts, idle):
    graph = _edge_graph(module, X)
    triggers = _xnnpack_pass_triggers()
    assert {name for name in acts | idle if triggers[name](graph)} == acts


@pytest.mark.parametrize("module", [ConvRelu(), Conv1d(), WideCat(), MaxPool()],
                         ids=["conv-relu", "conv1d", "cat-of-6", "max-pool"])
def test_skipping_changes_no_byte_and_the_program_runs(module, monkeypatch):
    target = resolve_targets("xnnpack")[0]
    ep = torch.export.export(module.eval(), (X,))
    skipped, _ = lower(ep, target, Options())
    monkeypatch.setenv("DOTCOM_XNNPACK_ALL_PASSES", "1")
    full, _ = lower(torch.export.export(module.eval(), (X,)), target, Options())
    assert skipped.buffer == full.buffer
    (out,) = run_program(skipped.buffer, [X])
    torch.testing.assert_close(out, module(X), rtol=1e-4, atol=1e-4)
