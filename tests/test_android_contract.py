"""The Android app's platform-free Kotlin core against the project's contracts.

`android_demo/tools/check.sh` compiles the core with a real Kotlin compiler and leaves a
runnable jar (`build/android/dotcom-core.jar`, main class ContractMain). Here that jar
parses a manifest written by the real export command, writes a latency report that must
validate against latency-report v1 and agree with report/stats.py, times two programs in
turn (the loop the app runs, on a scripted clock) into the app's array of reports, and
preprocesses an image the way PreprocessConfig.transform() does.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
JAR = REPO / "build" / "android" / "dotcom-core.jar"
CHECK = REPO / "android_demo" / "tools" / "check.sh"


@pytest.fixture(scope="module")
def core_jar() -> Path:
    """The core's jar; built by check.sh (which `make test` runs first) when missing."""
    if not JAR.is_file():
        assert shutil.which("java"), "java (17) is needed to build and run the Android core"
        proc = subprocess.run(["bash", str(CHECK)], capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert JAR.is_file()
    return JAR


def run_core(jar: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["java", "-jar", str(jar), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def exported(tiny_xnnpack_fp32) -> tuple[Path, dict]:
    """(manifest path, manifest) of DoTCoM-Tiny (64x64) exported to XNNPACK by the export command's API (conftest)."""
    result = tiny_xnnpack_fp32
    return Path(result.manifest_path), json.loads(Path(result.manifest_path).read_text())


@pytest.mark.slow
def test_core_report_validates_and_matches_python_stats(core_jar, exported, tmp_path):
    from dotcom_mobile.report.latency import validate_report
    from dotcom_mobile.report.stats import summarize

    manifest_path, manifest = exported
    vectors = json.loads((REPO / "report" / "schemas" / "stats_vectors.json").read_text())
    samples = next(c for c in vectors["cases"] if c["name"] == "random_57")["samples"]
    out = tmp_path / "report.json"
    proc = run_core(core_jar, "report", "--manifest", str(manifest_path), "--out", str(out),
                    "--latencies", ",".join(repr(float(s)) for s in samples), "--load-ms", "12.5",
                    "--artifact-path", "/data/local/tmp/dotcom/" + manifest["artifact"]["file"])
    assert proc.returncode == 0, proc.stderr

    report = validate_report(out)
    assert report["status"] == "ok" and report["runtime"]["runner"] == "android"
    art = report["artifact"]
    assert art["name"] == manifest["artifact"]["file"]
    assert (art["sha256"], art["size_bytes"]) == (manifest["artifact"]["sha256"], manifest["artifact"]["size_bytes"])
    assert (art["backend"], art["quantization"], art["model"]) == (manifest["backend"], manifest["quantization"],
                                                                    manifest["model"])
    assert art["input_shape"] == manifest["input"]["shape"]
    assert report["delegation"] == manifest["delegation"]
    assert report["runtime"]["executorch_version"] == manifest["versions"]["executorch"]

    res = report["results"]
    assert res["latencies_ms"] == [float(s) for s in samples]
    assert res["load_ms"] == 12.5
    for key, want in summarize([float(s) for s in samples]).items():
        assert math.isclose(res[key], want, rel_tol=1e-12), (key, res[key], want)


@pytest.mark.slow
def test_core_error_report_validates(core_jar, exported, tmp_path):
    from dotcom_mobile.report.latency import validate_report

    manifest_path, _ = exported
    out = tmp_path / "error.json"
    proc = run_core(core_jar, "report", "--manifest", str(manifest_path), "--out", str(out),
                    "--error", "cannot load model.pte: \"quoted\"\nExecuTorch log:\nE 00:00 program.cpp:12]")
    assert proc.returncode == 0, proc.stderr
    report = validate_report(out)
    assert report["status"] == "error" and report["results"] is None
    assert report["error"].endswith("program.cpp:12]")


@pytest.mark.slow
def test_core_rejects_a_bad_manifest_with_one_line(core_jar, exported, tmp_path):
    _, manifest = exported
    broken = dict(manifest, labels=manifest["labels"][:-1])
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    proc = run_core(core_jar, "report", "--manifest", str(path), "--out", str(tmp_path / "r.json"), "--latencies", "1")
    assert proc.returncode == 2
    n = manifest["num_classes"]
    assert proc.stderr.strip() == f"error: labels has {n - 1} names but num_classes is {n}"
    assert not (tmp_path / "r.json").exists()


def _pair_of_manifests(exported, tmp_path) -> tuple[list[Path], list[str]]:
    """The exported manifest and a copy describing another file name: two programs to time in turn."""
    manifest_path, manifest = exported
    other = dict(manifest, artifact=dict(manifest["artifact"], file="partner_" + manifest["artifact"]["file"]))
    other_path = tmp_path / "partner.json"
    other_path.write_text(json.dumps(other))
    return [manifest_path, other_path], [manifest["artifact"]["file"], other["artifact"]["file"]]


@pytest.mark.slow
def test_core_in_turn_reports_validate_and_name_each_other(core_jar, exported, tmp_path):
    """core's InTurn loop as the app runs it: a JSON array, a valid report each, naming the other."""
    from dotcom_mobile.report.latency import report_filename, timed_in_turn, validate_report
    from dotcom_mobile.report.stats import summarize

    manifests, names = _pair_of_manifests(exported, tmp_path)
    # Per program: first call, one more warm-up call (warm-up 2), then 4 timed calls; B twice as slow.
    a = [9.0, 5.0, 1.25, 2.5, 1.5, 3.0]
    b = [2 * x for x in a]
    out = tmp_path / "benchmark_results.json"
    proc = run_core(core_jar, "in-turn", "--manifests", ",".join(map(str, manifests)), "--warmup", "2",
                    "--call-ms", ";".join(",".join(map(repr, calls)) for calls in (a, b)), "--out", str(out))
    assert proc.returncode == 0, proc.stderr

    reports = json.loads(out.read_text())
    assert isinstance(reports, list) and len(reports) == 2
    for report, name, other, calls in zip(reports, names, names[::-1], (a, b)):
        validate_report(report, source=f"{name} report")
        assert report["status"] == "ok" and report["artifact"]["name"] == name
        assert report["protocol"]["in_turn_with"] == [other] and timed_in_turn(report)
        assert (report["protocol"]["warmup"], report["protocol"]["iterations"]) == (2, 4)
        res = report["results"]
        assert res["first_inference_ms"] == calls[0]
        assert res["latencies_ms"] == calls[2:]  # exact: the clock is scripted
        for key, want in summarize(calls[2:]).items():
            assert math.isclose(res[key], want, rel_tol=1e-12), (key, res[key], want)
    assert [report_filename(r) for r in reports] == [f"{Path(n).stem}__android-in-turn__t0.json" for n in names]

    # One program alone is the same loop: one report (an object, as the app has always written), no in_turn_with.
    proc = run_core(core_jar, "in-turn", "--manifests", str(manifests[0]), "--call-ms", "3,1,2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    alone = validate_report(out)
    assert "in_turn_with" not in alone["protocol"] and not timed_in_turn(alone)
    assert (alone["results"]["first_inference_ms"], alone["results"]["latencies_ms"]) == (3.0, [1.0, 2.0])


@pytest.mark.slow
def test_core_in_turn_failure_is_an_error_report_for_each(core_jar, exported, tmp_path):
    """The second program throws: both reports are errors naming it, and still name each other."""
    from dotcom_mobile.report.latency import validate_report

    manifests, names = _pair_of_manifests(exported, tmp_path)
    out = tmp_path / "benchmark_results.json"
    proc = run_core(core_jar, "in-turn", "--manifests", ",".join(map(str, manifests)), "--call-ms", "1,1,1;2,2,2",
                    "--fail", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    reports = json.loads(out.read_text())
    for report, name, other in zip(reports, names, names[::-1]):
        validate_report(report, source=f"{name} report")
        assert report["status"] == "error" and report["results"] is None
        assert report["error"] == f"{names[1]}: forward failed on call 3"
        assert report["protocol"]["in_turn_with"] == [other]


def _test_image(width: int, height: int, seed: int = 0):
    """A smooth gradient with noise and a hard edge: resampling differences show up."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 / (width - 1))
    g = (y * 255 / (height - 1))
    b = np.where((x // 7 + y // 5) % 2 == 0, 220, 30)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (height, width, 3))
    return Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8), "RGB")


@pytest.mark.slow
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
@pytest.mark.parametrize("size", [(131, 97), (90, 200)])
def test_core_preprocessing_matches_torchvision(core_jar, exported, tmp_path, interpolation, size):
    """Kotlin's arithmetic vs PreprocessConfig.transform() on the same pixels: within one uint8 level."""
    from dotcom_mobile.model import PreprocessConfig

    _, manifest = exported
    pre = dict(manifest["preprocessing"], interpolation=interpolation)
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(json.dumps(dict(manifest, preprocessing=pre)))

    image = _test_image(*size)
    rgb = np.asarray(image, dtype=np.uint32)
    argb = (0xFF << 24) | (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    pixels = tmp_path / "pixels.bin"
    pixels.write_bytes(argb.astype(">u4").tobytes())
    out = tmp_path / "tensor.bin"
    proc = run_core(core_jar, "preprocess", "--manifest", str(manifest_path), "--pixels", str(pixels),
                    "--width", str(size[0]), "--height", str(size[1]), "--out", str(out))
    assert proc.returncode == 0, proc.stderr

    c, h, w = manifest["input"]["shape"][1:]
    kotlin = np.frombuffer(out.read_bytes(), dtype=">f4").astype(np.float32).reshape(c, h, w)
    cfg = PreprocessConfig((c, h, w), pre["crop_pct"], interpolation, tuple(pre["mean"]), tuple(pre["std"]))
    assert cfg.resize == pre["resize"]
    ref = cfg.transform()(image).numpy()
    assert ref.shape == kotlin.shape
    one_level = 1.0 / 255.0 / min(pre["std"]) + 1e-6
    diff = np.abs(kotlin - ref)
    assert diff.max() <= one_level, f"max diff {diff.max():.5f} > one uint8 level {one_level:.5f}"
    # torchvision resizes uint8 natively (fixed-point weights, uint8 after each pass, as the
    # core does) for nearest, antialiased bicubic, and bilinear where torch has AVX2; there
    # the tensors must be bit-identical (the condition is torchvision's own). Elsewhere it goes
    # through float32 and may round the other way: one level apart at most.
    import torch

    if interpolation != "bilinear" or "AVX2" in torch.backends.cpu.get_cpu_capability():
        assert np.array_equal(kotlin, ref), f"{(diff > 0).mean():.2%} of values differ (max {diff.max():.6f})"
