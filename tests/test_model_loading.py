"""Checkpoint loading paths, option handling, input checks and the timm registration."""

from __future__ import annotations

import re

import pytest
import torch

import dotcom_mobile.model as M
from dotcom_mobile.model import DotcomError


def _logits(model: torch.nn.Module, fixture: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(fixture["input"])


def _assert_matches_fixture(model: torch.nn.Module, fixture: dict) -> None:
    assert (_logits(model, fixture) - fixture["logits"]).abs().max().item() <= 1e-5


# ---- the authors' formats ------------------------------------------------------------

def test_authors_plain_state_dict(tmp_path, tiny_fixture):
    path = tmp_path / "authors.pth"
    torch.save(tiny_fixture["state_dict"], path)
    _assert_matches_fixture(M.create_model("dotcom_tiny", checkpoint=path), tiny_fixture)


def test_authors_training_checkpoint(tmp_path, tiny_fixture):
    path = tmp_path / "epoch_99.pth"
    sd = tiny_fixture["state_dict"]
    optimizer = {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 1e-3, "params": [0]}]}
    torch.save({"model_state_dict": sd, "optimizer": optimizer, "epoch": 99}, path)
    _assert_matches_fixture(M.create_model("dotcom_tiny", checkpoint=path), tiny_fixture)


def test_dataparallel_prefixed_state_dict(tmp_path, tiny_fixture):
    path = tmp_path / "dp.pth"
    torch.save({f"module.{k}": v for k, v in tiny_fixture["state_dict"].items()}, path)
    _assert_matches_fixture(M.create_model("dotcom_tiny", checkpoint=path), tiny_fixture)


def test_project_checkpoint_round_trip(tmp_path, tiny_fixture):
    model = M.create_model("dotcom_tiny", co_bias=True)
    model.load_state_dict(M.checkpoint_filter_fn(tiny_fixture["state_dict"]))
    model.dotcom_meta["preprocess"] = M.PreprocessConfig((3, 224, 224))
    path = tmp_path / "ours.pth"
    M.save_checkpoint(path, model, extra={"epoch": 5})
    assert not list(tmp_path.glob(".*tmp")), "temp file left behind"
    loaded = M.create_model("dotcom_tiny", checkpoint=path)
    _assert_matches_fixture(loaded, tiny_fixture)
    meta = loaded.dotcom_meta
    assert meta["model"] == "dotcom_tiny" and meta["task"] == "classify" and meta["num_classes"] == 1000
    assert meta["preprocess"].input_size == (3, 224, 224)
    assert meta["class_names"][0] == "tench"
    assert meta["options"] == {"co_bias": True}


def test_project_checkpoint_of_dense_task_round_trip(tmp_path):
    torch.manual_seed(0)
    seg = M.create_model("dotcom_tiny", task="segment", num_classes=3)
    path = tmp_path / "seg.pth"
    M.save_checkpoint(path, seg)
    loaded = M.create_model("dotcom_tiny", checkpoint=path)  # task and classes come from the file
    assert loaded.dotcom_meta["task"] == "segment" and loaded.num_classes == 3
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(seg(x), loaded(x))


# ---- mismatches ----------------------------------------------------------------------

def test_other_variant_says_which_it_fits(tmp_path):
    path = tmp_path / "small.pth"
    torch.save(M.create_model("dotcom_small").state_dict(), path)
    with pytest.raises(DotcomError) as e:
        M.create_model("dotcom_tiny", checkpoint=path)
    msg = str(e.value)
    assert "\n" not in msg
    assert "is for dotcom_small with 1000 classes, not dotcom_tiny" in msg and "--model dotcom_small" in msg


def test_other_class_count_says_which_it_fits(tmp_path, tiny_fixture):
    path = tmp_path / "tiny10.pth"
    torch.save(M.create_model("dotcom_tiny", num_classes=10).state_dict(), path)
    assert M.create_model("dotcom_tiny", checkpoint=path).num_classes == 10  # unasked, the head's count
    with pytest.raises(DotcomError, match=r"is for dotcom_tiny with 10 classes, not dotcom_tiny with 1000 classes"):
        M.create_model("dotcom_tiny", checkpoint=path, num_classes=1000)


def test_project_checkpoint_of_other_variant(tmp_path):
    path = tmp_path / "base.pth"
    M.save_checkpoint(path, M.create_model("dotcom_small", num_classes=7))
    with pytest.raises(DotcomError, match=r"is for dotcom_small with 7 classes, not dotcom_tiny"):
        M.create_model("dotcom_tiny", checkpoint=path)


def test_missing_and_unexpected_keys_are_listed(tmp_path, tiny_fixture):
    sd = dict(tiny_fixture["state_dict"])
    sd.pop("fc.bias")
    sd["extra.weight"] = torch.zeros(3)
    path = tmp_path / "broken.pth"
    torch.save(sd, path)
    with pytest.raises(DotcomError) as e:
        M.create_model("dotcom_tiny", checkpoint=path)
    msg = str(e.value)
    assert "\n" not in msg
    assert "missing keys: head.bias" in msg and "unexpected keys: extra.weight" in msg


class _RunsCode:
    """Unpickling this calls a function: exactly what weights_only must refuse."""

    def __reduce__(self):
        return (print, ("this ran while loading a checkpoint",))


def test_pickle_with_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "payload": _RunsCode()}, path)
    with pytest.raises(DotcomError) as e:
        M.create_model("dotcom_tiny", checkpoint=path)
    msg = str(e.value)
    assert msg.startswith(f"checkpoint {path} cannot be read safely:") and "\n" not in msg
    assert "this ran" not in capsys.readouterr().out


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(DotcomError, match="no such file"):
        M.create_model("dotcom_tiny", checkpoint=tmp_path / "nope.pth")


# ---- input sizes and options -----------------------------------------------------------

@pytest.mark.parametrize("task", ["classify", "detect", "segment"])
@pytest.mark.parametrize("size", [(225, 224), (224, 200), (100, 100)])
def test_input_not_multiple_of_32_fails_before_compute(task, size):
    model = M.create_model("dotcom_tiny", task=task)
    stem = model.stem if task == "classify" else model.backbone.stem
    calls = []
    stem.register_forward_hook(lambda *args: calls.append(1))
    with pytest.raises(DotcomError, match=rf"input size {size[0]}x{size[1]} is not supported: .*multiples of 32"):
        model(torch.zeros(1, 3, *size))
    assert not calls, "the stem ran before the size check"


@pytest.mark.parametrize("block", ["qib", "qg", "mv2", "basic"])
@pytest.mark.parametrize("co_bias", [True, False])
def test_block_choice_and_co_bias_build_and_run(block, co_bias):
    model = M.create_model("dotcom_tiny", num_classes=10, block=block, co_bias=co_bias)
    names = [n for n, _ in model.named_parameters()]
    assert any("co_bias" in n for n in names) == co_bias
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert model.dotcom_meta["options"] == {"block": block, "co_bias": co_bias}


def test_co_bias_off_removes_exactly_its_parameters():
    on = sum(p.numel() for p in M.create_model("dotcom_tiny").parameters())
    off = sum(p.numel() for p in M.create_model("dotcom_tiny", co_bias=False).parameters())
    assert on - off == 480


def test_unknown_block_is_one_line():
    with pytest.raises(DotcomError, match=r"unknown block type 'resnet'; choose one of qib, qg, mv2, basic"):
        M.create_model("dotcom_tiny", block="resnet")


def test_unknown_model_suggests_near_miss():
    with pytest.raises(DotcomError, match=r"unknown model 'dotcom_tiyn' .*did you mean dotcom_tiny\?"):
        M.create_model("dotcom_tiyn")


# ---- timm ------------------------------------------------------------------------------

def test_timm_registration_and_pretrained_cfg():
    import timm

    for name in M.list_models():
        assert name in timm.list_models("dotcom_*")
    model = timm.create_model("dotcom_tiny")
    assert sum(p.numel() for p in model.parameters()) == 1_731_064
    cfg = model.pretrained_cfg
    assert tuple(cfg["input_size"]) == (3, 256, 256)
    assert cfg["crop_pct"] == pytest.approx(256 / 288)
    assert tuple(cfg["mean"]) == (0.485, 0.456, 0.406) and tuple(cfg["std"]) == (0.229, 0.224, 0.225)
    assert cfg["interpolation"] == "bilinear" and cfg["classifier"] == "head"
    data_cfg = timm.data.resolve_data_config({}, model=model)
    assert data_cfg["input_size"] == (3, 256, 256) and data_cfg["crop_pct"] == pytest.approx(256 / 288)
    head = timm.create_model("dotcom_tiny", num_classes=5)
    assert head.get_classifier().out_features == 5


def test_timm_pretrained_from_authors_file(tmp_path, tiny_fixture):
    import timm

    path = tmp_path / "authors.pth"
    torch.save(tiny_fixture["state_dict"], path)
    model = timm.create_model("dotcom_tiny", pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    _assert_matches_fixture(model, tiny_fixture)
