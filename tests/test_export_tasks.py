"""``dotcom-mobile export --task detect|segment`` on XNNPACK: Tiny's SSDLite and DeepLabv3
heads at 64x64 (the smallest side DoTCoM takes; the detector's last maps are then 1x1).

Each is exported once through the CLI from a project checkpoint (with ``--etrecord``);
the .pte must lower whole, run with the ExecuTorch runtime and match the eager module's
raw outputs, the manifest must name the task and describe those outputs (names, shapes,
kinds) as the apps read them, and the ETRecord must parse and map the XNNPACK delegate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from dotcom_mobile.cli import cli
from dotcom_mobile.export.api import program_backends, run_program
from dotcom_mobile.export.manifest import sha256_path, validate_manifest
from dotcom_mobile.model import create_model

pytestmark = pytest.mark.slow

SIZE = 64
NUM_CLASSES = {"detect": 5, "segment": 3}


@pytest.fixture(scope="module", params=["detect", "segment"])
def dense(request, tmp_path_factory):
    """(task, checkpoint, output folder, CLI stdout) after one `export --task TASK`."""
    from dotcom_mobile.model.registry import save_checkpoint

    task = request.param
    work = tmp_path_factory.mktemp(task)
    torch.manual_seed(0)
    model = create_model("dotcom_tiny", task=task, num_classes=NUM_CLASSES[task])
    ckpt = work / f"dotcom_tiny_{task}.pth"
    save_checkpoint(ckpt, model)
    result = CliRunner().invoke(cli, ["export", "--checkpoint", str(ckpt), "--task", task, "--target", "xnnpack",
                                      "--input-size", str(SIZE), "--out", str(work / "out"), "--etrecord", "--no-progress"])
    assert result.exit_code == 0, result.output
    return task, ckpt, work / "out", result.stdout


def _outputs(y) -> list[torch.Tensor]:
    return list(y) if isinstance(y, (tuple, list)) else [y]


def test_runs_and_matches_eager(dense):
    task, ckpt, out, _ = dense
    pte = out / "dotcom_tiny_xnnpack_fp32.pte"
    assert program_backends(pte) == ["XnnpackBackend"]
    model = create_model("dotcom_tiny", task=task, checkpoint=ckpt)  # the training form
    for seed in (1, 2):
        x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            ref = _outputs(model(x))
        got = run_program(pte, [x])
        assert len(got) == len(ref)
        for r, g in zip(ref, got):
            assert g.shape == r.shape
            scale = max(1.0, r.abs().max().item())
            assert (g - r).abs().max().item() <= 1e-4 * scale, (task, (g - r).abs().max().item(), scale)


def test_manifest_names_task_and_outputs(dense):
    task, ckpt, out, _ = dense
    pte = out / "dotcom_tiny_xnnpack_fp32.pte"
    m = validate_manifest(out / "dotcom_tiny_xnnpack_fp32.json")
    assert (m["artifact"]["sha256"], m["artifact"]["size_bytes"]) == sha256_path(pte)
    assert m["task"] == task and m["num_classes"] == NUM_CLASSES[task] == len(m["labels"])
    assert m["input"]["shape"] == [1, 3, SIZE, SIZE] and m["preprocessing"]["crop"] == [SIZE, SIZE]
    model = create_model("dotcom_tiny", task=task, checkpoint=ckpt)
    if task == "detect":
        anchors = model.anchors(SIZE).shape[0]  # what the app decodes the boxes against
        assert [(o["name"], o["shape"], o["kind"]) for o in m["outputs"]] == [
            ("box_regression", [1, anchors, 4], "box_regression"),
            ("class_logits", [1, anchors, NUM_CLASSES[task]], "class_logits"),
        ]
    else:
        assert [(o["name"], o["shape"], o["kind"]) for o in m["outputs"]] == [
            ("mask_logits", [1, NUM_CLASSES[task], SIZE, SIZE], "mask_logits")]
    d = m["delegation"]
    assert d["partitions"] <= 3 and d["fraction"] >= 0.98, d


def test_console_summary(dense):
    """One row per artifact: target, path, size, delegated fraction, partitions, time."""
    task, _, out, stdout = dense
    m = json.loads((out / "dotcom_tiny_xnnpack_fp32.json").read_text())
    header, rule, row = stdout.splitlines()[:3]
    assert header.split() == ["target", "artifact", "size", "delegated", "partitions", "time"]
    assert set(rule.replace(" ", "")) == {"-"}
    d = m["delegation"]
    assert row.startswith("xnnpack fp32") and str(Path(out) / "dotcom_tiny_xnnpack_fp32.pte") in row
    assert f"{d['fraction']:.1%} ({d['delegated_nodes']}/{d['total_nodes']})" in row
    assert f"{m['artifact']['size_bytes'] / 2**20:.2f} MiB" in row


def test_etrecord_parses_for_the_inspector(dense):
    from executorch.devtools.etrecord import parse_etrecord

    _, _, out, _ = dense
    m = validate_manifest(out / "dotcom_tiny_xnnpack_fp32.json")
    assert m["etrecord"] == "dotcom_tiny_xnnpack_fp32.etrecord"
    record = parse_etrecord(str(out / m["etrecord"]))
    assert record.edge_dialect_program is not None
    assert record._delegate_map, "no delegate debug map: the Inspector could not attribute XNNPACK time to ops"
