"""train.loop: a few steps learn, evaluate counts right, exported graphs switch modes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dotcom_mobile.train.loop import evaluate, recalibrate_batchnorm, set_mode, train_one_epoch


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _tiny(num_classes: int = 4) -> nn.Module:
    import dotcom_mobile.model as M

    torch.manual_seed(0)
    return M.create_model("dotcom_tiny", num_classes=num_classes)


def test_a_few_steps_reduce_the_loss(shapes_root):
    from dotcom_mobile.model import PreprocessConfig
    from dotcom_mobile.train.data import ImageFolderDataset

    model = _tiny()
    ds = ImageFolderDataset(shapes_root / "train", ["circle", "cross", "square", "triangle"],
                            PreprocessConfig((3, 64, 64), crop_pct=1.0).transform())
    idx = list(range(0, len(ds), len(ds) // 16))[:16]
    x = torch.stack([ds[i][0] for i in idx])
    y = torch.tensor([ds[i][1] for i in idx])
    assert len(set(y.tolist())) == 4
    loss_fn = nn.CrossEntropyLoss()

    def batch_loss() -> float:
        model.train()  # batch statistics, as during the steps
        with torch.no_grad():
            return loss_fn(model(x), y).item()

    before = batch_loss()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    stats = train_one_epoch(model, [(x, y)] * 6, opt, loss_fn=loss_fn, progress=False)
    after = batch_loss()
    assert stats["steps"] == 6 and stats["step"] == 6
    assert math.isfinite(stats["loss"]) and stats["images_per_s"] > 0
    assert after < 0.8 * before, (before, after)


def test_timm_scheduler_is_stepped_per_update():
    from timm.scheduler import CosineLRScheduler

    model = nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1.0)
    sched = CosineLRScheduler(opt, t_initial=10, lr_min=0.0, t_in_epochs=False)
    data = [(torch.randn(2, 4), torch.tensor([0, 2]))] * 5
    stats = train_one_epoch(model, data, opt, loss_fn=nn.CrossEntropyLoss(), scheduler=sched, epoch=1, step=3,
                            progress=False)
    assert stats["step"] == 8
    assert stats["lr"] == pytest.approx(0.5 * (1 + math.cos(math.pi * 8 / 10)))


def test_evaluate_counts_top1_top5_and_loss():
    torch.manual_seed(1)
    logits = torch.randn(23, 10)
    labels = torch.randint(0, 10, (23,))
    table = {i: logits[i] for i in range(23)}
    # The "model" looks its logits up by the index hidden in the input.
    loader = [(torch.arange(s, min(s + 5, 23)).float()[:, None], labels[s:s + 5]) for s in range(0, 23, 5)]
    result = evaluate(lambda x: torch.stack([table[int(i)] for i in x[:, 0]]), loader)
    rank = (logits > logits.gather(1, labels[:, None])).sum(1)  # how many logits beat the label's
    assert result["count"] == 23
    assert result["top1"] == pytest.approx((rank == 0).float().mean().item())
    assert result["top5"] == pytest.approx((rank < 5).float().mean().item())
    assert result["loss"] == pytest.approx(nn.functional.cross_entropy(logits, labels).item(), rel=1e-6)
    assert 0 < result["top1"] < result["top5"] < 1


def test_set_mode_switches_an_exported_graph():
    """A torch.export graph (what prepare_qat_pt2e returns) needs torchao's mode rewrite."""
    import copy

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 8, 8)
    gm = torch.export.export(copy.deepcopy(net).train(), (x,)).module()
    set_mode(gm, False)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), copy.deepcopy(net).eval()(x))  # running statistics
        set_mode(gm, True)
        torch.testing.assert_close(gm(x), copy.deepcopy(net).train()(x))  # batch statistics


def test_recalibrate_batchnorm_uses_current_weights():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    data = [(torch.randn(8, 3, 4, 4) * 3 + 1, torch.zeros(8))] * 3
    recalibrate_batchnorm(net, data)
    bn = net[1]
    with torch.no_grad():
        feats = net[0](data[0][0])
    torch.testing.assert_close(bn.running_mean, feats.mean((0, 2, 3)))
    assert bn.momentum == 0.1 and not net.training
