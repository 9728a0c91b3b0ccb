import json

import pytest
import torch

import dotcom_mobile.model as M
from dotcom_mobile.model.deploy import to_deploy


@pytest.mark.parametrize("name", M.list_models())
def test_param_counts_match_reference(name, reference_dir):
    ref = json.loads((reference_dir / "reference_state_dicts.json").read_text())[name]
    model = M.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == ref["num_parameters"]


@pytest.mark.parametrize("name", M.list_models())
def test_every_reference_key_maps_with_its_shape(name, reference_dir):
    ref = json.loads((reference_dir / "reference_state_dicts.json").read_text())[name]["state_dict"]
    own = {k: tuple(v.shape) for k, v in M.create_model(name).state_dict().items()}
    mapped = {M.remap_reference_key(k): tuple(s) for k, s in ref.items()}
    assert mapped == own


def test_fixture_logits_reproduced(tiny_fixture):
    model = M.create_model(tiny_fixture["variant"])
    model.load_state_dict(M.checkpoint_filter_fn(tiny_fixture["state_dict"]))
    with torch.no_grad():
        out = model(tiny_fixture["input"])
    assert (out - tiny_fixture["logits"]).abs().max().item() <= 1e-5


def test_deploy_form_equals_training_form(tiny_fixture):
    model = M.create_model("dotcom_tiny")
    model.load_state_dict(M.checkpoint_filter_fn(tiny_fixture["state_dict"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "co_bias" in name:  # zero-init: give them values so the fold is exercised
                p.normal_(0, 0.5)
        x = tiny_fixture["input"]
        ref = model(x)
        for backend in ("xnnpack", "coreml", "vulkan"):
            assert (to_deploy(model, backend)(x) - ref).abs().max().item() <= 1e-5, backend


def test_xnnpack_deploy_form_is_the_int8_friendly_graph(tiny_fixture):
    """Every rewrite the int8 graph relies on is there (no BatchNorm, no silu op, no DoT-block
    concat, no attention-scale mul) and it is still the same function."""
    from dotcom_mobile.model.deploy import SplitFuse, SplitSiLU

    model = M.create_model("dotcom_tiny")
    model.load_state_dict(M.checkpoint_filter_fn(tiny_fixture["state_dict"]))
    deploy = to_deploy(model, "xnnpack")
    types = {type(m).__name__ for m in deploy.modules()}
    assert not types & {"BatchNorm2d", "SiLU", "LayerNorm"}, types
    assert sum(isinstance(m, SplitFuse) for m in deploy.modules()) == 3  # one per DoT block
    assert sum(isinstance(m, SplitSiLU) for m in deploy.modules()) == 63
    x = tiny_fixture["input"][:1]
    ep = torch.export.export(deploy, (x,), strict=False)
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    banned = {"aten.cat.default", "aten.silu.default", "aten.batch_norm.default",
              "aten._native_batch_norm_legit_no_training.default"}
    assert not banned & targets, banned & targets
    scalar_muls = [n for n in ep.graph.nodes if n.target == torch.ops.aten.mul.Tensor
                   and any(isinstance(a, float) for a in n.args)]
    assert not scalar_muls  # the attention scale lives in the qkv weights
    with torch.no_grad():
        assert (deploy(x) - model(x)).abs().max().item() <= 1e-5
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # training form untouched
