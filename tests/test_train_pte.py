"""`dotcom-mobile eval --artifact`: an fp32 XNNPACK .pte scores what the eager model scores."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from dotcom_mobile.cli import main

SIZE = 64
SCHEMA = Path(__file__).resolve().parents[1] / "export" / "schemas" / "manifest.v1.schema.json"


pytestmark = pytest.mark.usefixtures("one_thread")  # one_thread and small_shapes: tests/conftest.py


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, small_shapes) -> Path:
    """A few real training steps (not a random net: predictions should differ per image)."""
    import dotcom_mobile.model as M
    from dotcom_mobile.train import data as D
    from dotcom_mobile.train.loop import recalibrate_batchnorm, train_one_epoch

    torch.manual_seed(0)
    classes = D.check_image_folder(small_shapes)
    model = M.create_model("dotcom_tiny", num_classes=len(classes))
    pre = M.PreprocessConfig((3, SIZE, SIZE))  # the paper's crop_pct: resize 72, crop 64
    model.dotcom_meta.update(class_names=classes, preprocess=pre)
    ds = D.ImageFolderDataset(small_shapes / "train", classes, pre.transform())
    loader = D.make_loader(ds, batch_size=16, train=True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    train_one_epoch(model, loader, opt, loss_fn=torch.nn.CrossEntropyLoss(), progress=False)
    recalibrate_batchnorm(model, D.make_loader(ds, batch_size=16, train=False))
    path = tmp_path_factory.mktemp("pte_ckpt") / "tiny.pth"
    M.save_checkpoint(path, model)
    return path


@pytest.fixture(scope="module")
def fp32_pte(tmp_path_factory, checkpoint) -> Path:
    """Lowered once for the module (~60 s): deploy form -> export -> XNNPACK -> .pte + manifest."""
    import dotcom_mobile.model as M
    from dotcom_mobile.model.deploy import to_deploy
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    model = M.create_model("dotcom_tiny", checkpoint=checkpoint)
    meta = model.dotcom_meta
    x = torch.randn(1, 3, SIZE, SIZE)
    ep = torch.export.export(to_deploy(model, "xnnpack"), (x,), strict=True)
    prog = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
    out = tmp_path_factory.mktemp("pte")
    pte = out / "dotcom_tiny_xnnpack_fp32.pte"
    pte.write_bytes(prog.buffer)
    manifest = {
        "schema": "dotcom-mobile/manifest", "schema_version": 1,
        "artifact": {"file": pte.name, "format": "pte", "size_bytes": pte.stat().st_size,
                     "sha256": hashlib.sha256(pte.read_bytes()).hexdigest()},
        "model": "dotcom_tiny", "task": "classify", "num_classes": meta["num_classes"],
        "input": {"name": "image", "shape": [1, 3, SIZE, SIZE], "layout": "NCHW", "dtype": "float32", "color": "RGB"},
        "preprocessing": meta["preprocess"].to_dict(),
        "outputs": [{"name": "logits", "shape": [1, meta["num_classes"]], "kind": "logits"}],
        "labels": list(meta["class_names"]), "backend": "xnnpack", "quantization": "fp32",
        "versions": {"torch": torch.__version__},
    }
    import jsonschema

    jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))
    pte.with_suffix(".json").write_text(json.dumps(manifest))
    return pte


def _eval(capsys, *argv: str) -> list[dict]:
    capsys.readouterr()
    rc = main(["eval", "--json", "--workers", "0", "--no-progress", *argv])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    return [json.loads(line) for line in cap.out.splitlines()]


@pytest.mark.slow
def test_fp32_pte_scores_like_the_eager_model(fp32_pte, checkpoint, small_shapes, capsys):
    # One call, one table: the checkpoint and the artifact (batch 5 exercises the chunking and padding).
    eager, pte = _eval(capsys, "--checkpoint", str(checkpoint), "--artifact", str(fp32_pte),
                       "--data", str(small_shapes), "--batch-size", "5")
    assert eager["backend"] == "eager" and eager["artifact"] is None
    assert pte["backend"] == "xnnpack" and pte["quantization"] == "fp32" and pte["artifact"] == str(fp32_pte)
    assert pte["model"] == eager["model"] == "dotcom_tiny"
    assert pte["count"] == eager["count"] == 32
    assert pte["top1"] == eager["top1"] and pte["top5"] == eager["top5"]
    assert pte["loss"] == pytest.approx(eager["loss"], rel=1e-4, abs=1e-5)
    assert eager["loss"] != pytest.approx(1.3863, abs=1e-3)  # not an untrained uniform predictor


@pytest.mark.slow
def test_pte_uses_its_manifest(fp32_pte, small_shapes, capsys, tmp_path):
    # The same program with a manifest whose labels are in another order scores differently:
    # eval maps class folders through the manifest, not through the eager model.
    other = tmp_path / fp32_pte.name
    other.write_bytes(fp32_pte.read_bytes())
    manifest = json.loads(fp32_pte.with_suffix(".json").read_text())
    base = _eval(capsys, "--artifact", str(fp32_pte), "--data", str(small_shapes))[0]
    manifest["labels"] = manifest["labels"][1:] + manifest["labels"][:1]
    other.with_suffix(".json").write_text(json.dumps(manifest))
    rotated = _eval(capsys, "--artifact", str(other), "--data", str(small_shapes))[0]
    assert rotated["count"] == base["count"]
    assert rotated["loss"] != pytest.approx(base["loss"], rel=1e-3)
