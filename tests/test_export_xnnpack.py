"""XNNPACK export of the trained Tiny (64x64): fp32 and int8 .pte run and match eager,
the manifest describes the artifact, the bundled program's outputs are the runtime's, a
failed export leaves the folder as it was, and re-exporting gives identical bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dotcom_mobile.cli import main as cli_main
from dotcom_mobile.export.api import export_model, program_backends, run_program
from dotcom_mobile.export.manifest import sha256_path, validate_manifest
from dotcom_mobile.model import create_model
from dotcom_mobile.perf.measure_delegation import sqnr_db

pytestmark = pytest.mark.slow


def _images(root: Path, split: str, n: int) -> list[torch.Tensor]:
    """n shapes images preprocessed as the trained fixture expects (64x64, no crop)."""
    from torchvision.datasets import ImageFolder

    from dotcom_mobile.model import PreprocessConfig

    ds = ImageFolder(root / split, transform=PreprocessConfig((3, 64, 64), crop_pct=1.0).transform())
    step = max(1, len(ds) // n)
    return [ds[i][0].unsqueeze(0) for i in range(0, len(ds), step)][:n]


@pytest.fixture(scope="module")
def fp32(tiny_xnnpack_fp32):
    """``export --target xnnpack --bundled`` of the trained Tiny (conftest: built once per run)."""
    return tiny_xnnpack_fp32


@pytest.fixture(scope="module")
def q8(tiny_xnnpack_q8):
    """``quantize`` (the quantize room's own PTQ, 32 training images), then export from the .pt2 (conftest)."""
    return tiny_xnnpack_q8


def test_fp32_runs_and_matches_eager(fp32, trained_tiny, shapes_root):
    assert fp32.path.name == "dotcom_tiny_xnnpack_fp32.pte"
    assert program_backends(fp32.path) == ["XnnpackBackend"]
    model = create_model("dotcom_tiny", checkpoint=trained_tiny)  # the training form, not the deploy form
    for x in _images(shapes_root, "val", 4) + [torch.randn(1, 3, 64, 64)]:
        (out,) = run_program(fp32.path, [x])
        with torch.no_grad():
            ref = model(x)
        assert (out - ref).abs().max().item() <= 1e-4


def test_fp32_manifest_describes_the_artifact(fp32, trained_tiny):
    m = json.loads(fp32.manifest_path.read_text())
    assert m == validate_manifest(fp32.manifest_path) == fp32.manifest
    assert fp32.manifest_path.name == "dotcom_tiny_xnnpack_fp32.json"
    assert (m["artifact"]["sha256"], m["artifact"]["size_bytes"]) == sha256_path(fp32.path)
    ckpt = torch.load(trained_tiny, weights_only=True)
    assert m["labels"] == ckpt["class_names"] and m["num_classes"] == 4
    assert m["input"]["shape"] == [1, 3, 64, 64] and m["outputs"][0]["shape"] == [1, 4]
    assert m["preprocessing"]["crop"] == [64, 64] and m["preprocessing"]["resize"] == 64
    assert m["backend"] == "xnnpack" and m["quantization"] == "fp32" and m["compute_unit"] is None
    d = m["delegation"]
    assert d["partitions"] <= 3 and d["fraction"] >= 0.98
    assert d["delegated_nodes"] + sum(d["non_delegated_ops"].values()) == d["total_nodes"]
    assert m["versions"]["executorch"] and m["versions"]["torch"]


def test_bundled_outputs_are_the_runtimes(fp32):
    from executorch.extension.pybindings import portable_lib as rt
    from programs import bundled_cases, off_by_one

    info = fp32.manifest["bundled"]
    bpte = fp32.path.with_name(info["file"])
    assert bpte.name == "dotcom_tiny_xnnpack_fp32.bpte"
    assert (info["sha256"], info["size_bytes"]) == sha256_path(bpte)
    data = bpte.read_bytes()
    cases = bundled_cases(data)
    assert len(cases) == info["num_inputs"] >= 2
    for (x,), (stored,) in cases:
        (out,) = run_program(fp32.path, [x])
        assert torch.equal(out, stored)
    # The on-device check: ExecuTorch's own bundled verification passes on every case...
    bundle = rt._load_bundled_program_from_buffer(data)
    for i in range(len(cases)):
        bundle.verify_result_with_bundled_expected_output("forward", i, info["rtol"], info["atol"])
    # ...and fails once the stored expected output of case 0 is off by one.
    bad = off_by_one(data)
    with pytest.raises(Exception):
        rt._load_bundled_program_from_buffer(bad).verify_result_with_bundled_expected_output(
            "forward", 0, info["rtol"], info["atol"])


def test_failed_export_leaves_folder_as_it_was_and_bytes_are_deterministic(fp32, trained_tiny, monkeypatch, tmp_path):
    """Re-export into the same folder, failing after the new .pte is complete (in its temp
    file): nothing in the folder changes. The captured .pte equals the first one, although
    this export runs every XNNPACK delegate pass (the first skipped those that had nothing
    to act on: export/targets.py), so skipping them changed no byte of the fp32 program."""
    import shutil

    import dotcom_mobile.export.api as api

    folder = tmp_path / "out"  # a copy: the shared export stays untouched whatever happens here
    shutil.copytree(fp32.path.parent, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    captured = {}

    def failing_manifest(*, artifact, **kw):
        captured["pte"] = Path(artifact).read_bytes()
        raise RuntimeError("forced failure after lowering")

    monkeypatch.setattr(api, "build_manifest", failing_manifest)
    monkeypatch.setenv("DOTCOM_XNNPACK_ALL_PASSES", "1")
    with pytest.raises(RuntimeError, match="forced failure"):
        export_model(checkpoint=trained_tiny, target="xnnpack", out_dir=folder, bundled=True, progress=False)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert captured["pte"] == before[fp32.path.name], "same model exported twice gave different bytes"


def test_int8_exports_whole_from_the_pt2(q8):
    pt2, result = q8
    assert result.path.name == "dotcom_tiny_xnnpack_q8.pte"
    m = result.manifest
    assert m["quantization"] == "q8" and m["quantization_details"]["quantizer_backend"] == "xnnpack"
    assert m["source"]["quantized"] == str(pt2)
    assert m["delegation"]["partitions"] <= 3 and m["delegation"]["fraction"] >= 0.98
    assert (m["artifact"]["sha256"], m["artifact"]["size_bytes"]) == sha256_path(result.path)


@pytest.fixture(scope="module")
def int8_outputs(q8, trained_tiny, shapes_root):
    """fp32 eager, quantized eager and int8 .pte logits on 16 validation images."""
    pt2, result = q8
    qmodule = torch.export.load(str(pt2)).module()
    model = create_model("dotcom_tiny", checkpoint=trained_tiny)
    xs = _images(shapes_root, "val", 16)
    with torch.no_grad():
        fp32 = torch.cat([model(x) for x in xs])
        eager = torch.cat([qmodule(x) for x in xs])
    pte = torch.cat([run_program(result.path, [x])[0] for x in xs])
    return fp32, eager, pte


def test_int8_runs_and_matches_quantized_eager(int8_outputs):
    """Issue 4's 30 dB. Holds because quantize snaps biases onto the int32 grid the
    delegate uses (quantize.backends.snap_bias_to_int32); without it: 21-26 dB."""
    _, eager, pte = int8_outputs
    assert sqnr_db(eager, pte) >= 30.0, sqnr_db(eager, pte)


def test_int8_pte_is_as_accurate_as_quantized_eager(int8_outputs):
    """What a user needs from the delegate: the int8 .pte meets the same bar against fp32 as
    the quantized eager model (issue 3's 20 dB), within the spread of two rounding
    realizations (measured: .pte 21.1 / eager 23.9 dB with 32 calibration images, 26.8 /
    25.5 dB with 64)."""
    fp32, eager, pte = int8_outputs
    assert sqnr_db(fp32, pte) >= sqnr_db(fp32, eager) - 4.0
    assert sqnr_db(fp32, pte) >= 20.0
    agree = lambda out: (out.argmax(1) == fp32.argmax(1)).float().mean().item()  # noqa: E731
    assert agree(pte) >= max(0.75, agree(eager) - 2 / len(fp32)), (agree(pte), agree(eager))  # 2 of 16 images
    assert not torch.allclose(pte, fp32, atol=1e-3)  # int8 kernels really ran, not an fp32 fallback


def test_in_memory_recipe_is_the_quantize_commands(q8, trained_tiny, shapes_root):
    """``quantize.recipes.quantized_program`` (what measure_delegation lowers) on the same
    calibration images gives the program ``quantize_model`` wrote, output for output."""
    from dotcom_mobile.quantize.data import load_image_folder
    from dotcom_mobile.quantize.recipes import quantized_program

    pt2, _ = q8
    model = create_model("dotcom_tiny", checkpoint=trained_tiny)
    calib = load_image_folder(shapes_root / "train", model.dotcom_meta["preprocess"], 32)  # quantize_model's pick
    ours = quantized_program(model, calib.inputs, backend="xnnpack").module()
    written = torch.export.load(str(pt2)).module()
    with torch.no_grad():
        for x in _images(shapes_root, "val", 4):
            assert torch.equal(ours(x), written(x))


@pytest.mark.parametrize("target", ["coreml", "vulkan"])
def test_quantized_for_another_backend_is_one_clear_line(q8, target, tmp_path, capsys):
    pt2, _ = q8
    rc = cli_main(["export", "--quantized", str(pt2), "--target", target, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1
    assert err.startswith("Error: ") and "made for xnnpack, not " + target in err
    assert not (tmp_path / "o").exists()
