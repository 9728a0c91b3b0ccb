"""Strict torch.export of every classifier at 224 and 256, and of the dense heads.

Export only (no lowering): the exported program is run and compared with eager.
"""

from __future__ import annotations

import pytest
import torch

import dotcom_mobile.model as M
from dotcom_mobile.model.deploy import to_deploy


def _export(model: torch.nn.Module, x: torch.Tensor) -> torch.export.ExportedProgram:
    return torch.export.export(model, (x,), strict=True)


@pytest.mark.slow
@pytest.mark.parametrize("size", [224, 256])
@pytest.mark.parametrize("name", M.list_models())
def test_classifier_exports_strict(name, size):
    torch.manual_seed(0)
    model = M.create_model(name)
    x = torch.randn(1, 3, size, size)
    ep = _export(model, x)
    (out_spec,) = [s for s in ep.graph_signature.output_specs]
    assert tuple(ep.graph.find_nodes(op="output")[0].args[0][0].meta["val"].shape) == (1, 1000), out_spec
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    # the deployment-form rules of issue 2: no chunk/split, no expand, no in-place ops
    assert not any(t.startswith(("aten.split", "aten.chunk", "aten.expand")) for t in targets), targets
    assert not any(t.split(".")[1].endswith("_") for t in targets if t.startswith("aten.")), targets
    if name == "dotcom_tiny":
        with torch.no_grad():
            assert (ep.module()(x) - model(x)).abs().max().item() <= 1e-5


@pytest.fixture(scope="module")
def tiny_detector():
    torch.manual_seed(0)
    return M.create_model("dotcom_tiny", task="detect")


@pytest.mark.slow
def test_detector_exports_strict_and_ends_at_raw_outputs(tiny_detector):
    x = torch.randn(1, 3, 320, 320)
    ep = _export(to_deploy(tiny_detector, "xnnpack"), x)
    outputs = ep.graph.find_nodes(op="output")[0].args[0]
    assert [tuple(o.meta["val"].shape) for o in outputs] == [(1, 3234, 4), (1, 3234, 91)]
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    # decoding (exp of box sizes), top-k and NMS are post-processing, not part of the graph
    assert not any(k in t for t in targets for k in ("nms", "topk", "aten.exp.", "torchvision")), targets
    with torch.no_grad():
        got, ref = ep.module()(x), tiny_detector(x)
    assert all((a - b).abs().max().item() <= 1e-4 for a, b in zip(got, ref))


@pytest.mark.slow
def test_segmenter_exports_strict_at_512():
    torch.manual_seed(0)
    model = M.create_model("dotcom_tiny", task="segment")
    x = torch.randn(1, 3, 512, 512)
    ep = _export(model, x)
    (out,) = ep.graph.find_nodes(op="output")[0].args[0]
    assert tuple(out.meta["val"].shape) == (1, 21, 512, 512)
    with torch.no_grad():
        assert (ep.module()(x) - model(x)).abs().max().item() <= 1e-4
