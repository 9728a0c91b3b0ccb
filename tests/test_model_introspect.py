"""The CLI knows what the checkpoint knows: --model only where no file says (model/introspect.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import dotcom_mobile.model as M
from dotcom_mobile.cli import main
from dotcom_mobile.model.introspect import checkpoint_facts, choose_model, meta_facts


def _line(capfd, argv: list[str]) -> str:
    capfd.readouterr()
    code = main(argv)
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def authors_ckpt(tmp_path_factory) -> Path:
    """A bare state dict of DoTCoM-Tiny with a 4-class head: nothing but its shapes says what it is."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("authors") / "weights.pth"
    torch.save(M.create_model("dotcom_tiny", num_classes=4).state_dict(), path)
    return path


def test_facts_of_a_project_and_an_authors_checkpoint(tiny_ckpt, authors_ckpt):
    assert checkpoint_facts(tiny_ckpt) == checkpoint_facts(tiny_ckpt).__class__(
        f"checkpoint {tiny_ckpt}", "dotcom_tiny", "classify", 4, 64)
    facts = checkpoint_facts(authors_ckpt)
    assert (facts.model, facts.num_classes, facts.input_size) == ("dotcom_tiny", 4, None)
    # ...and the head's class count is used when building from it.
    assert M.create_model("dotcom_tiny", checkpoint=authors_ckpt).num_classes == 4


def test_choose_model():
    facts = meta_facts({"model": "dotcom_tiny", "input": {"shape": [1, 3, 64, 64]}}, "x.pt2")
    assert facts.input_size == 64
    assert choose_model(None, facts) == "dotcom_tiny"
    assert choose_model("tiny", facts) == "dotcom_tiny"  # an alias is not a contradiction
    with pytest.raises(M.DotcomError, match=r"^--model dotcom_small contradicts x.pt2, which holds dotcom_tiny"):
        choose_model("dotcom_small", facts)
    with pytest.raises(M.DotcomError, match="^x.pt2 does not say which model it holds: give --model NAME$"):
        choose_model(None, meta_facts({}, "x.pt2"))
    assert choose_model(None, None, default="small") == "dotcom_small"
    with pytest.raises(M.DotcomError, match="^quantize needs --model$"):
        choose_model(None, None, needs="quantize needs --model")


def test_quantize_reads_the_model_from_the_checkpoint(tiny_ckpt, tmp_path, capfd):
    out = tmp_path / "q"
    # No "Missing option '--model'": the next check is quantize_model's own, after the model is known.
    line = _line(capfd, ["quantize", "--checkpoint", str(tiny_ckpt), "--keep-fp32", "1", "--no-per-layer",
                         "--out", str(out)])
    assert line == "Error: --keep-fp32 N ranks layers by the per-layer analysis: it cannot be skipped with it"
    line = _line(capfd, ["quantize", "--checkpoint", str(tiny_ckpt), "--model", "small", "--out", str(out)])
    assert line == (f"Error: --model small contradicts checkpoint {tiny_ckpt}, which holds dotcom_tiny "
                    "(drop --model: it is read from the file)")
    assert _line(capfd, ["quantize", "--out", str(out)]) == (
        "Error: quantize needs --model NAME or a --checkpoint that records it")
    assert not out.exists()


def test_inspect_and_eval_read_it_too(tiny_ckpt, tmp_path, capfd):
    line = _line(capfd, ["inspect", "activations", "--checkpoint", str(tiny_ckpt), "--images", str(tmp_path),
                         "--out", str(tmp_path / "a.jpg")])
    assert "the figure is written as PNG" in line  # past the model: it came from the checkpoint
    line = _line(capfd, ["eval", "--checkpoint", str(tiny_ckpt), "--model", "dotcom_base", "--data", str(tmp_path)])
    assert line.startswith("Error: --model dotcom_base contradicts checkpoint ")


def test_export_and_demo_check_model_against_the_file(tiny_ckpt, toy, tmp_path, capfd):
    pt2 = tmp_path / "dotcom_tiny_xnnpack_q8.pt2"
    meta = {"model": "dotcom_tiny", "task": "classify", "num_classes": 4, "class_names": list("abcd"),
            "preprocess": M.PreprocessConfig((3, 16, 16), crop_pct=1.0).to_state(), "backend": "xnnpack"}
    torch.export.save(torch.export.load(toy["pt2"]), pt2, extra_files={"dotcom_meta.json": json.dumps(meta)})
    out = tmp_path / "o"
    line = _line(capfd, ["export", "--model", "tiny", "--quantized", str(pt2), "--input-size", "32", "--out", str(out)])
    assert "was exported at 16x16" in line  # "tiny" is dotcom_tiny: no contradiction
    line = _line(capfd, ["export", "--model", "dotcom_small", "--quantized", str(pt2), "--out", str(out)])
    assert line.startswith(f"Error: --model dotcom_small contradicts {pt2}, which holds dotcom_tiny")
    line = _line(capfd, ["export", "--model", "dotcom_small", "--checkpoint", str(tiny_ckpt), "--out", str(out)])
    assert line.startswith(f"Error: --model dotcom_small contradicts checkpoint {tiny_ckpt}")
    line = _line(capfd, ["demo", "--model", "dotcom_small", "--checkpoint", str(tiny_ckpt), "--out", str(out)])
    assert line.startswith(f"Error: --model dotcom_small contradicts checkpoint {tiny_ckpt}")
    assert not out.exists()


def test_bench_baselines_need_weights_of_the_artifacts_model(tiny_ckpt, toy, tmp_path, capfd):
    from dotcom_mobile.export.manifest import build_manifest, write_manifest

    pte = tmp_path / "dotcom_small_xnnpack_fp32.pte"
    pte.write_bytes(toy["xnnpack"].read_bytes())
    meta = {"model": "dotcom_small", "task": "classify", "num_classes": 4, "class_names": list("abcd"),
            "preprocess": M.PreprocessConfig((3, 16, 16), crop_pct=1.0)}
    write_manifest(build_manifest(artifact=pte, meta=meta, input_shape=(1, 3, 16, 16), backend="xnnpack",
                                  outputs=[{"name": "logits", "shape": [1, 4], "kind": "logits"}], quantization="fp32"),
                   pte.with_suffix(".json"))
    line = _line(capfd, ["bench", str(pte), "--baseline", "eager", "--checkpoint", str(tiny_ckpt),
                         "--out", str(tmp_path / "r")])
    assert line == (f"Error: checkpoint {tiny_ckpt} holds dotcom_tiny, but {pte.name} is dotcom_small: "
                    "the baselines need weights of the artifact's model")
    assert not (tmp_path / "r").exists()
