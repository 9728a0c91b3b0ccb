"""The contract between DoTCoMKit (the iOS app's Swift logic) and the Python side.

DoTCoMKit runs here through its `dotcomkit-contract` tool inside the Swift chroot that
ios_demo/tools/check.sh builds (`make test` runs check.sh first). Both directions:
the manifests Python writes are decoded by Swift, the reports Swift writes validate
against latency-report v1 with the statistics of report/stats.py, and Swift's
preprocessing of an image matches `PreprocessConfig.transform()`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dotcom_mobile.report.stats import summarize

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "ios_demo" / "tools" / "contract.sh"
TOOLCHAINS = Path(os.environ.get("DOTCOM_TOOLCHAINS")
                  or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dotcom-mobile" / "toolchains")
CHROOT = Path(os.environ.get("SWIFT_CHROOT") or TOOLCHAINS / "swift-chroot")


@pytest.fixture(scope="module")
def swift() -> None:
    if os.geteuid() != 0:
        pytest.skip("the Swift chroot needs root (chroot, mount)")
    if not (CHROOT / ".dotcom-swift-ready").exists():
        pytest.fail(f"no Swift toolchain at {CHROOT}: run ios_demo/tools/check.sh (make test does)")


def contract(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([str(CONTRACT), *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and out.returncode != 0:
        raise AssertionError(f"contract.sh {args[0]} failed ({out.returncode}): {out.stderr[-2000:]}")
    return out


def handmade_manifest(tmp_path: Path, **preprocessing) -> Path:
    """A manifest as export writes it, validated against the schema before use."""
    from dotcom_mobile.export.manifest import validate_manifest

    m = {
        "schema": "dotcom-mobile/manifest", "schema_version": 1,
        "artifact": {"file": "dotcom_tiny_xnnpack_q8.pte", "format": "pte", "size_bytes": 4242,
                     "sha256": "ab" * 32},
        "model": "dotcom_tiny", "task": "classify", "num_classes": 3,
        "input": {"name": "image", "shape": [1, 3, 64, 64], "layout": "NCHW", "dtype": "float32", "color": "RGB"},
        "preprocessing": {"resize": 72, "crop": [64, 64], "interpolation": "bilinear",
                          "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "crop_pct": 64 / 72,
                          **preprocessing},
        "outputs": [{"name": "logits", "shape": [1, 3], "kind": "logits"}],
        "labels": ["circle", "square", "triangle"], "backend": "xnnpack", "compute_unit": None,
        "quantization": "q8",
        "delegation": {"delegated_nodes": 120, "total_nodes": 122, "fraction": 120 / 122, "partitions": 1,
                       "non_delegated_ops": {"aten.view_copy.default": 2}},
        "versions": {"executorch": "1.5.1", "torch": "2.14.1", "coremltools": None},
        "created_at": "2026-11-24T00:00:00Z",
    }
    validate_manifest(m)
    path = tmp_path / f"manifest_{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(m))
    return path


def test_swift_report_validates_with_python_statistics(swift, tmp_path):
    from dotcom_mobile.devices.ios import parse_reports, report_file_name
    from dotcom_mobile.report.latency import validate_report

    manifest = handmade_manifest(tmp_path)
    latencies = [12.5, 11.75, 13.0, 40.25, 12.0, 11.5, 12.25, 12.125, 11.875, 12.625, 12.0]
    out = tmp_path / "report.json"
    contract("report", manifest, out, "--latencies", ",".join(map(str, latencies)),
             "--load-ms", "85.5", "--first-ms", "30.25", "--peak-bytes", "73400320")
    report = validate_report(out)
    assert report["status"] == "ok"
    assert report["runtime"] == {"runner": "ios", "executorch_version": "1.5.1"}
    assert report["device"]["platform"] == "ios"
    m = json.loads(manifest.read_text())
    art = report["artifact"]
    assert (art["name"], art["backend"], art["quantization"]) == ("dotcom_tiny_xnnpack_q8.pte", "xnnpack", "q8")
    assert (art["sha256"], art["size_bytes"], art["input_shape"]) == ("ab" * 32, 4242, [1, 3, 64, 64])
    assert report["delegation"] == m["delegation"]
    res = report["results"]
    assert res["latencies_ms"] == latencies
    assert (res["load_ms"], res["first_inference_ms"], res["peak_memory_bytes"]) == (85.5, 30.25, 73400320)
    for key, want in summarize(latencies).items():
        assert res[key] == pytest.approx(want, rel=1e-9, abs=0), key

    # The CLI reads the same report from the XCTest log line and names the file by the project rule.
    line = "Test Case '-[x]' 2026 DOTCOM-REPORT-JSON: " + json.dumps(report, separators=(",", ":"))
    assert parse_reports(["noise", line]) == [report]
    assert report_file_name(report) == "dotcom_tiny_xnnpack_q8__ios__t0.json"


def test_cli_reads_reports_attached_to_the_xcresult(swift, tmp_path):
    """Fallback when the log lines are missing: the XCTAttachments of the result bundle."""
    import shutil

    from dotcom_mobile.devices.ios import attachment_reports

    written = tmp_path / "written.json"
    contract("report", handmade_manifest(tmp_path), written, "--latencies", "3.5,4.0,3.75")
    bundle = tmp_path / "bench.xcresult"
    bundle.mkdir()
    calls = []

    def fake_xcresulttool(cmd, **kwargs):  # what `xcrun xcresulttool export attachments` leaves behind
        calls.append(cmd)
        out = Path(cmd[cmd.index("--output-path") + 1])
        out.mkdir(parents=True)
        shutil.copy(written, out / "A1B2_dotcom_tiny_xnnpack_q8__ios__t0.json")
        (out / "manifest.json").write_text(json.dumps([{"testIdentifier": "x"}]))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    reports = attachment_reports(bundle, tmp_path, run=fake_xcresulttool)
    assert calls and calls[0][:4] == ["xcrun", "xcresulttool", "export", "attachments"]
    assert reports == [json.loads(written.read_text())]
    assert attachment_reports(tmp_path / "missing.xcresult", tmp_path, run=fake_xcresulttool) == []


def test_swift_error_report_validates(swift, tmp_path):
    from dotcom_mobile.devices.ios import report_file_name
    from dotcom_mobile.report.latency import validate_report

    out = tmp_path / "error.json"
    contract("report", handmade_manifest(tmp_path), out, "--runner", "coreml", "--compute-unit", "CPU_ONLY",
             "--error", "backend 'CoreMLBackend' is not registered")
    report = validate_report(out)
    assert report["status"] == "error"
    assert report["results"] is None
    assert report["error"] == "backend 'CoreMLBackend' is not registered"
    assert report_file_name(report) == "dotcom_tiny_xnnpack_q8__coreml__t0__cpu_only.json"


def _in_turn_pair(tmp_path: Path) -> list[Path]:
    """Two manifests of one model, int8 and fp32: the pair whose ratio in-turn timing is for."""
    q8 = handmade_manifest(tmp_path)
    fp32 = handmade_manifest(tmp_path)
    data = json.loads(fp32.read_text())
    data["artifact"]["file"] = "dotcom_tiny_xnnpack_fp32.pte"
    data["quantization"] = "fp32"
    fp32.write_text(json.dumps(data))
    return [q8, fp32]


def test_swift_in_turn_reports_validate_and_name_each_other(swift, tmp_path):
    """DoTCoMKit's InTurn loop (fake programs, fake clock with a slow spell) -> the app's reports."""
    from dotcom_mobile.devices.ios import report_file_name
    from dotcom_mobile.report.latency import timed_in_turn, validate_report

    out = tmp_path / "reports"
    # Program 0 costs 2 ms a call, program 1 3.5 ms, times the same slow-spell factor per step.
    printed = contract("in-turn", out, *_in_turn_pair(tmp_path), "--costs", "2,3.5", "--warmup", "2",
                       "--iterations", "6", "--repeats", "2").stdout.split()
    assert sorted(printed) == sorted(p.name for p in out.iterdir())
    q8, fp32 = (validate_report(out / name) for name in printed)
    names = ["dotcom_tiny_xnnpack_q8.pte", "dotcom_tiny_xnnpack_fp32.pte"]
    assert [q8["artifact"]["name"], fp32["artifact"]["name"]] == names
    assert q8["protocol"]["in_turn_with"] == [names[1]]
    assert fp32["protocol"]["in_turn_with"] == [names[0]]
    assert timed_in_turn(q8) and timed_in_turn(fp32)
    # The Swift file name is the Python one (report_filename's `-in-turn`).
    assert printed == [report_file_name(q8), report_file_name(fp32)] == [
        "dotcom_tiny_xnnpack_q8__ios-in-turn__t0.json", "dotcom_tiny_xnnpack_fp32__ios-in-turn__t0.json"]
    assert q8["protocol"]["warmup"] == 2 and q8["protocol"]["repeats"] == 2
    a, b = q8["results"]["latencies_ms"], fp32["results"]["latencies_ms"]
    assert len(a) == len(b) == 12
    # The slow spell moved every sample, yet each step's ratio is the programs' ratio.
    assert len(set(a)) > 1
    assert [y / x for x, y in zip(a, b)] == pytest.approx([1.75] * 12, rel=1e-12)
    assert fp32["results"]["first_inference_ms"] / q8["results"]["first_inference_ms"] == pytest.approx(1.75)
    for report, samples in ((q8, a), (fp32, b)):
        for key, want in summarize(samples).items():
            assert report["results"][key] == pytest.approx(want, rel=1e-9, abs=0), key


def test_swift_in_turn_failure_gives_each_an_error_report_naming_the_culprit(swift, tmp_path):
    from dotcom_mobile.report.latency import validate_report

    out = tmp_path / "reports"
    printed = contract("in-turn", out, *_in_turn_pair(tmp_path), "--fail", "1").stdout.split()
    reports = [validate_report(out / name) for name in printed]
    assert len(reports) == 2
    for report in reports:
        assert report["status"] == "error" and report["results"] is None
        assert report["error"] == ("dotcom_tiny_xnnpack_fp32.pte: forward failed: "
                                   "backend 'XnnpackBackend' is not registered")
    assert [r["protocol"]["in_turn_with"] for r in reports] == [["dotcom_tiny_xnnpack_fp32.pte"],
                                                                ["dotcom_tiny_xnnpack_q8.pte"]]


def test_swift_rejects_a_broken_manifest_with_the_field(swift, tmp_path):
    manifest = handmade_manifest(tmp_path)
    data = json.loads(manifest.read_text())
    del data["input"]["shape"]
    manifest.write_text(json.dumps(data))
    out = contract("manifest", manifest, check=False)
    assert out.returncode == 1
    assert out.stderr.strip().endswith("missing field input.shape")


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
def test_swift_preprocessing_matches_torchvision(swift, tmp_path, interpolation):
    """DoTCoMKit's resize/crop/normalise vs PreprocessConfig.transform() on the same pixels."""
    import torch
    from PIL import Image

    from dotcom_mobile.model import PreprocessConfig

    cfg = PreprocessConfig((3, 64, 64), crop_pct=64 / 72, interpolation=interpolation)
    manifest = handmade_manifest(tmp_path, **cfg.to_dict())
    # A smooth scene with edges and some noise, landscape 177x131 (shorter side 131 -> 72).
    h, w = 131, 97 + 80
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 / w, y * 255 / h, ((x // 16 + y // 16) % 2) * 200 + 20], -1)
    rgb = np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
    rgba = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], -1)
    (tmp_path / "img.rgba").write_bytes(rgba.tobytes())

    contract("preprocess", manifest, tmp_path / "img.rgba", w, h, tmp_path / "out.f32")
    swift_tensor = np.fromfile(tmp_path / "out.f32", dtype="<f4").reshape(3, 64, 64)
    want = cfg.transform()(Image.fromarray(rgb)).numpy()
    assert want.shape == swift_tensor.shape
    diff = np.abs(swift_tensor - want)
    # One uint8 level after normalisation: rounding of the two resampling passes may differ.
    one_level = 1 / 255 / min(cfg.std)
    assert diff.max() <= one_level + 1e-5, (interpolation, float(diff.max()))
    assert diff.mean() < 0.1 * one_level, (interpolation, float(diff.mean()))
    assert torch.from_numpy(swift_tensor).argmax() == torch.from_numpy(want).argmax()


@pytest.mark.slow
def test_swift_decodes_a_manifest_written_by_export(swift, tiny_xnnpack_fp32, tmp_path):
    """A real `export_model` manifest (XNNPACK fp32, 64x64; conftest's shared export) read by DoTCoMKit."""
    result = tiny_xnnpack_fp32
    written = json.loads(Path(result.manifest_path).read_text())
    decoded = json.loads(contract("manifest", result.manifest_path).stdout)
    for key in ("model", "task", "num_classes", "input", "preprocessing", "outputs", "labels", "backend",
                "quantization", "artifact", "delegation"):
        assert decoded[key] == written[key], key
    assert decoded["versions"]["executorch"] == written["versions"]["executorch"]

    from dotcom_mobile.report.latency import validate_report

    out = tmp_path / "r.json"
    contract("report", result.manifest_path, out, "--latencies", "5.5,6.5,6.0")
    report = validate_report(out)
    assert report["artifact"]["name"] == Path(result.path).name
    assert report["artifact"]["sha256"] == written["artifact"]["sha256"]
    assert report["delegation"] == written["delegation"]
