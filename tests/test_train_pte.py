"""`dotcom-mobile eval --artifact`: an fp32 XNNPACK .pte scores what the eager model scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dotcom_mobile.cli import main

SCHEMA = Path(__file__).resolve().parents[1] / "export" / "schemas" / "manifest.v1.schema.json"


pytestmark = pytest.mark.usefixtures("one_thread")  # one_thread and small_shapes: tests/conftest.py


@pytest.fixture(scope="module")
def checkpoint(trained_tiny) -> Path:
    """A trained model (conftest's shipped checkpoint): predictions differ per image, unlike a random net's."""
    return trained_tiny


@pytest.fixture(scope="module")
def fp32_pte(tiny_xnnpack_fp32) -> Path:
    """Its XNNPACK .pte with the manifest export writes beside it (conftest: exported once per run)."""
    import jsonschema

    jsonschema.validate(tiny_xnnpack_fp32.manifest, json.loads(SCHEMA.read_text()))
    return tiny_xnnpack_fp32.path


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
