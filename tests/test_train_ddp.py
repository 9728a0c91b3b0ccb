"""A 2-process torchrun run on CPU (gloo): DDP keeps the replicas identical."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from dotcom_mobile.train.synthetic import make_shapes_dataset


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(tmp_path):
    data = make_shapes_dataset(tmp_path / "data", train_per_class=8, val_per_class=4, size=64)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "dotcom_mobile.cli", "train", "--model", "dotcom_tiny", "--data", str(data), "--epochs", "1",
           "--warmup-epochs", "0", "--batch-size", "8", "--input-size", "64", "--workers", "0", "--no-progress",
           "--out", str(out), "--save-rank-copies"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Rank 0 alone logs and checkpoints.
    assert proc.stdout.count("epoch 1/1") == 1, proc.stdout
    assert "on 2 x cpu" in proc.stdout
    assert sorted(p.name for p in out.glob("*.pth")) == ["best.pth", "last.pth", "rank0.pth", "rank1.pth"]

    ckpt = torch.load(out / "last.pth", map_location="cpu", weights_only=True)
    # 32 images, global batch 8 over 2 processes: 4 steps per epoch (not 8: the data is sharded).
    assert (ckpt["epoch"], ckpt["step"]) == (1, 4)
    r0 = torch.load(out / "rank0.pth", weights_only=True)
    r1 = torch.load(out / "rank1.pth", weights_only=True)
    for k, v in ckpt["state_dict"].items():
        assert torch.equal(r0[k], v) and torch.equal(r1[k], v), k
    # ... and training moved them (the check is not about two untouched copies).
    import dotcom_mobile.model as M

    torch.manual_seed(0)
    initial = M.create_model("dotcom_tiny", num_classes=4).state_dict()
    assert not torch.equal(initial["head.weight"], ckpt["state_dict"]["head.weight"])


@pytest.mark.slow
def test_torchrun_fine_tuning_unfreezes_the_backbone_on_every_rank(tmp_path, tiny_fixture):
    """--freeze-epochs under DDP: the wrapper is rebuilt when the backbone unfreezes, replicas stay equal."""
    from dotcom_mobile.model import checkpoint_filter_fn

    data = make_shapes_dataset(tmp_path / "data", train_per_class=8, val_per_class=4, size=32)
    init = tmp_path / "authors.pth"
    torch.save(tiny_fixture["state_dict"], init)  # 1000 classes, the authors' key names
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "dotcom_mobile.cli", "train", "--model", "dotcom_tiny", "--data", str(data), "--init", str(init),
           "--freeze-epochs", "1", "--epochs", "2", "--batch-size", "8", "--input-size", "32", "--workers", "0",
           "--no-progress", "--out", str(out), "--save-rank-copies"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("epoch 2: backbone unfrozen") == 1, proc.stdout
    ckpt = torch.load(out / "last.pth", map_location="cpu", weights_only=True)
    r0 = torch.load(out / "rank0.pth", weights_only=True)
    r1 = torch.load(out / "rank1.pth", weights_only=True)
    ref = checkpoint_filter_fn(tiny_fixture["state_dict"])
    for k, v in ckpt["state_dict"].items():
        assert torch.equal(r0[k], v) and torch.equal(r1[k], v), k
    assert not torch.equal(ckpt["state_dict"]["stem.0.weight"], ref["stem.0.weight"])  # trained in epoch 2
