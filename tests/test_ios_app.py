"""The iOS demo's Xcode project and the `dotcom-mobile ios` command, checked on Linux.

Xcode cannot run here, so the project file is checked for what makes it build on the
first try: every Swift file on disk compiled by the right target, ExecuTorch's Swift
package on the branch that matches the installed executorch, its four products and
`-all_load` on the app, the local DoTCoMKit package, a hosted test target and a shared
scheme for `xcodebuild test`.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pbxproj import XcodeProject

ROOT = Path(__file__).resolve().parents[1]
IOS = ROOT / "ios_demo"
PBXPROJ = IOS / "DoTCoMDemo.xcodeproj" / "project.pbxproj"
SCHEME = IOS / "DoTCoMDemo.xcodeproj" / "xcshareddata" / "xcschemes" / "DoTCoMDemo.xcscheme"
ET_PRODUCTS = {"executorch", "backend_xnnpack", "backend_coreml", "kernels_optimized"}


@pytest.fixture(scope="module")
def project() -> XcodeProject:
    return XcodeProject.load(str(PBXPROJ))


def _target(project: XcodeProject, name: str):
    (target,) = project.objects.get_targets(name)
    return target


def _phase_files(project: XcodeProject, target, isa: str) -> set[str]:
    names = set()
    for phase_id in target.buildPhases:
        phase = project.objects[phase_id]
        if phase.isa != isa:
            continue
        for build_id in phase.files:
            build = project.objects[build_id]
            if "fileRef" in build:
                names.add(project.objects[build.fileRef].path)
            else:
                names.add(project.objects[build.productRef].productName)
    return names


def _settings(project: XcodeProject, target) -> dict[str, dict]:
    configs = project.objects[target.buildConfigurationList].buildConfigurations
    return {project.objects[c].name: project.objects[c].buildSettings for c in configs}


def test_every_swift_file_is_compiled_by_its_target(project):
    app = _phase_files(project, _target(project, "DoTCoMDemo"), "PBXSourcesBuildPhase")
    tests = _phase_files(project, _target(project, "DoTCoMDemoBenchmarks"), "PBXSourcesBuildPhase")
    on_disk_app = {p.name for p in (IOS / "DoTCoMDemo").glob("*.swift")}
    on_disk_tests = {p.name for p in (IOS / "DoTCoMDemoBenchmarks").glob("*.swift")}
    assert on_disk_app and on_disk_tests
    assert app == on_disk_app
    assert tests == on_disk_tests
    # Every file reference points at a file that exists (no red files in Xcode).
    for ref in project.objects.get_objects_in_section("PBXFileReference"):
        if ref.sourceTree == "<group>":
            group = "DoTCoMDemo" if ref.path in on_disk_app | {"Models"} else "DoTCoMDemoBenchmarks"
            assert (IOS / group / ref.path).exists(), ref.path


def test_executorch_package_matches_installed_runtime(project):
    (remote,) = project.objects.get_objects_in_section("XCRemoteSwiftPackageReference")
    assert remote.repositoryURL == "https://github.com/pytorch/executorch"
    assert remote.requirement["kind"] == "branch"
    assert remote.requirement["branch"] == f"swiftpm-{importlib.metadata.version('executorch')}"
    (local,) = project.objects.get_objects_in_section("XCLocalSwiftPackageReference")
    assert local.relativePath == "DoTCoMKit"
    assert (IOS / local.relativePath / "Package.swift").exists()

    app = _target(project, "DoTCoMDemo")
    deps = {project.objects[d].productName: project.objects[d].package for d in app.packageProductDependencies}
    assert set(deps) == ET_PRODUCTS | {"DoTCoMKit"}
    assert {deps[p] for p in ET_PRODUCTS} == {remote.get_id()}
    assert deps["DoTCoMKit"] == local.get_id()
    assert _phase_files(project, app, "PBXFrameworksBuildPhase") == ET_PRODUCTS | {"DoTCoMKit"}
    for name, settings in _settings(project, app).items():
        assert "-all_load" in settings["OTHER_LDFLAGS"], name
        assert settings["IPHONEOS_DEPLOYMENT_TARGET"] == "17.0"
        assert settings["INFOPLIST_KEY_NSCameraUsageDescription"]


def test_benchmark_target_is_hosted_by_the_app(project):
    app = _target(project, "DoTCoMDemo")
    tests = _target(project, "DoTCoMDemoBenchmarks")
    assert tests.productType == "com.apple.product-type.bundle.unit-test"
    # Linked only through the host: a second static copy of ExecuTorch would register twice.
    assert not tests.packageProductDependencies
    for settings in _settings(project, tests).values():
        assert settings["TEST_HOST"].endswith("DoTCoMDemo.app/$(BUNDLE_EXECUTABLE_FOLDER_PATH)/DoTCoMDemo")
        assert settings["BUNDLE_LOADER"] == "$(TEST_HOST)"
    # @testable import in the Release build the scheme's Test action uses.
    assert _settings(project, app)["Release"]["ENABLE_TESTABILITY"] == "YES"
    assert _phase_files(project, tests, "PBXResourcesBuildPhase") == {"BenchmarkModels"}
    scheme = SCHEME.read_text()
    assert f'BlueprintIdentifier = "{tests.get_id()}"' in scheme
    assert f'BlueprintIdentifier = "{app.get_id()}"' in scheme
    assert 'TestAction\n      buildConfiguration = "Release"' in scheme


def test_generated_project_is_up_to_date():
    out = subprocess.run([sys.executable, str(IOS / "tools" / "gen_pbxproj.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_ios_bench_off_macos_is_one_clear_line(tmp_path, toy):
    artifact = tmp_path / "dotcom_tiny_xnnpack_fp32.pte"
    artifact.write_bytes(toy["xnnpack"].read_bytes())  # the artifact is checked first, on any machine
    (tmp_path / "dotcom_tiny_xnnpack_fp32.json").write_text(json.dumps(_manifest(artifact)))
    exe = Path(sys.executable).with_name("dotcom-mobile")
    out = subprocess.run([str(exe), "ios", "bench", str(artifact), "--device", "Some iPhone"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("Error: `dotcom-mobile ios` needs macOS with Xcode")
    assert "Traceback" not in out.stderr


def test_ios_help_is_light():
    code = ("import sys; from click.testing import CliRunner; import dotcom_mobile.devices.ios as m; "
            "r = CliRunner().invoke(m.ios, ['bench', '--help']); "
            "print(r.exit_code, 'torch' in sys.modules); print(r.output)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    first, help_text = out.stdout.split("\n", 1)
    assert first == "0 False", out.stderr
    for option in ("--device", "--warmup", "--iters", "--repeats", "--compute-units", "--team", "--out"):
        assert option in help_text


def test_requires_xcodebuild_on_macos():
    from dotcom_mobile.devices.ios import require_xcode
    from dotcom_mobile.model.errors import DotcomError

    with pytest.raises(DotcomError, match="xcodebuild not found"):
        require_xcode("darwin", which=lambda _: None)
    assert require_xcode("darwin", which=lambda _: "/usr/bin/xcodebuild") == "/usr/bin/xcodebuild"
    with pytest.raises(DotcomError, match="this machine runs linux"):
        require_xcode("linux")


def test_xcodebuild_arguments_keep_device_names_whole(tmp_path):
    from dotcom_mobile.devices.ios import test_environment, xcodebuild_command

    cmd = xcodebuild_command("/usr/bin/xcodebuild", IOS / "DoTCoMDemo.xcodeproj", "Jane's iPhone 15",
                             tmp_path / "r.xcresult", team="ABCDE12345")
    assert cmd[:2] == ["/usr/bin/xcodebuild", "test"]
    assert cmd[cmd.index("-destination") + 1] == "platform=iOS,name=Jane's iPhone 15"
    assert cmd[cmd.index("-scheme") + 1] == "DoTCoMDemo"
    assert "-only-testing:DoTCoMDemoBenchmarks/ModelBenchmarkTests/testBenchmarkEveryBundledModel" in cmd
    assert "DEVELOPMENT_TEAM=ABCDE12345" in cmd
    # The names the XCTest target reads (ModelBenchmarkTests.swift), via TEST_RUNNER_.
    env = test_environment(3, 20, 2, ["ALL", "CPU_ONLY"], in_turn=True)
    swift = (IOS / "DoTCoMDemoBenchmarks" / "ModelBenchmarkTests.swift").read_text()
    for key, value in env.items():
        assert key.startswith("TEST_RUNNER_")
        assert f'"{key[len("TEST_RUNNER_"):]}"' in swift
    assert env["TEST_RUNNER_DOTCOM_COMPUTE_UNITS"] == "ALL,CPU_ONLY"
    assert env["TEST_RUNNER_DOTCOM_IN_TURN"] == "1"
    # Off is spelled out: a TEST_RUNNER_DOTCOM_IN_TURN=1 left in the shell must not leak into a plain run.
    assert test_environment(3, 20, 2, ["ALL"])["TEST_RUNNER_DOTCOM_IN_TURN"] == "0"


def _main(capsys, argv: list[str]) -> tuple[int, str, str]:
    """``dotcom-mobile ARGV`` through the real entry point, in this process."""
    from dotcom_mobile.cli import main

    capsys.readouterr()
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("artifacts", [["a.pte"], ["a.pte", "a.pte"], ["a.pte", "other/a.pte"]],
                         ids=["one", "twice", "same-name"])
def test_ios_bench_in_turn_refuses_fewer_than_two_artifacts_first(capsys, tmp_path, artifacts):
    """Before any file is read or Xcode looked for (these files do not exist, this is not a Mac)."""
    rc, out, err = _main(capsys, ["ios", "bench", *(str(tmp_path / a) for a in artifacts), "--device", "x",
                                  "--in-turn", "--out", str(tmp_path / "reports")])
    assert rc == 1 and out == ""
    assert err.strip().splitlines() == [
        "Error: --in-turn needs two or more artifacts with different file names (their ratio is the point)"]
    assert not (tmp_path / "reports").exists()


def test_ios_bench_in_turn_takes_one_compute_unit(capsys, tmp_path):
    from dotcom_mobile.devices.ios import parse_compute_units

    a, b = tmp_path / "a.pte", tmp_path / "b.mlpackage"
    rc, _, err = _main(capsys, ["ios", "bench", str(a), str(b), "--device", "x", "--in-turn",
                                "--compute-units", "ALL,CPU_ONLY"])
    assert rc == 1
    assert err.strip().splitlines() == ["Error: --in-turn times each .mlpackage once: give one compute unit, "
                                        "not ALL,CPU_ONLY"]
    assert parse_compute_units(None, [a, b], in_turn=True) == ["ALL"]
    assert parse_compute_units(None, [a, b], in_turn=False) == ["ALL", "CPU_AND_NE", "CPU_ONLY"]
    assert parse_compute_units("cpu_only", [a, b], in_turn=True) == ["CPU_ONLY"]
    assert parse_compute_units("ALL,CPU_ONLY", [a, tmp_path / "c.pte"], in_turn=True) == ["ALL", "CPU_ONLY"]


FAKE_XCODEBUILD = r'''#!{python}
"""A fake xcodebuild: records the test settings it was given and prints the prepared reports."""
import json, os
env = {{k: v for k, v in os.environ.items() if k.startswith("TEST_RUNNER_")}}
json.dump({{"env": env, "staged": sorted(os.listdir("DoTCoMDemoBenchmarks/BenchmarkModels"))}},
          open(os.environ["FAKE_XCODEBUILD_LOG"], "w"))
for report in json.load(open(os.environ["FAKE_REPORTS"])):
    print("Test Case '-[ModelBenchmarkTests testBenchmarkEveryBundledModel]' DOTCOM-REPORT-JSON: " + json.dumps(report))
print("** TEST SUCCEEDED **")
'''


@pytest.mark.parametrize("app_knows_in_turn", [True, False], ids=["in-turn", "old-app"])
def test_ios_bench_in_turn_end_to_end_with_a_fake_xcodebuild(capsys, tmp_path, toy, monkeypatch, app_knows_in_turn):
    """`--in-turn` reaches the test process as DOTCOM_IN_TURN=1; reports timed alone are saved, then refused."""
    from dotcom_mobile.devices import ios
    from dotcom_mobile.report.latency import make_report, mark_in_turn

    artifacts = []
    for quant in ("fp32", "q8"):
        artifact = tmp_path / quant / f"dotcom_tiny_xnnpack_{quant}.pte"
        artifact.parent.mkdir()
        artifact.write_bytes(toy["xnnpack"].read_bytes())
        artifact.with_suffix(".json").write_text(json.dumps(_manifest(artifact)))
        artifacts.append(artifact)
    project = tmp_path / "ios_demo"
    (project / "DoTCoMDemo.xcodeproj").mkdir(parents=True)
    reports = [make_report(artifact={"name": a.name, "backend": "xnnpack", "quantization": q}, runner="ios",
                           threads=0, warmup=2, iterations=3, repeats=1, latencies_ms=lat, load_ms=20.0,
                           first_inference_ms=9.0, executorch_version="1.5.1", clock="mach_absolute_time",
                           device={"platform": "ios", "os": "iOS 17.5", "model": "iPhone15,2", "threads": 0,
                                   "thermal_state": "nominal"})
               for a, q, lat in zip(artifacts, ("fp32", "q8"), ([4.0, 4.5, 4.25], [3.0, 3.5, 3.25]))]
    if app_knows_in_turn:
        reports = mark_in_turn(reports)
    (tmp_path / "reports.json").write_text(json.dumps(reports))
    fake = tmp_path / "xcodebuild"
    fake.write_text(FAKE_XCODEBUILD.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setattr(ios, "require_xcode", lambda: str(fake))
    monkeypatch.setenv("FAKE_REPORTS", str(tmp_path / "reports.json"))
    monkeypatch.setenv("FAKE_XCODEBUILD_LOG", str(tmp_path / "fake.json"))
    monkeypatch.setenv("TEST_RUNNER_DOTCOM_IN_TURN", "0")  # the flag wins over the shell

    out_dir = tmp_path / "out"
    rc, out, err = _main(capsys, ["ios", "bench", *map(str, artifacts), "--device", "My iPhone", "--in-turn",
                                  "--iters", "3", "--warmup", "2", "--project", str(project), "--out", str(out_dir)])
    seen = json.loads((tmp_path / "fake.json").read_text())
    assert seen["env"]["TEST_RUNNER_DOTCOM_IN_TURN"] == "1"
    assert seen["env"]["TEST_RUNNER_DOTCOM_COMPUTE_UNITS"] == "ALL"
    assert seen["staged"] == sorted([a.name for a in artifacts] + [a.with_suffix(".json").name for a in artifacts])
    saved = sorted(p.name for p in out_dir.glob("*.json"))
    if app_knows_in_turn:
        assert rc == 0, err
        assert saved == ["dotcom_tiny_xnnpack_fp32__ios-in-turn__t0.json", "dotcom_tiny_xnnpack_q8__ios-in-turn__t0.json"]
        assert "ios, in turn" in out
        q8 = json.loads((out_dir / saved[1]).read_text())
        assert q8["protocol"]["in_turn_with"] == ["dotcom_tiny_xnnpack_fp32.pte"]
    else:
        assert rc == 1
        assert saved == ["dotcom_tiny_xnnpack_fp32__ios__t0.json", "dotcom_tiny_xnnpack_q8__ios__t0.json"]
        assert err.strip().splitlines() == [
            "Error: --in-turn: dotcom_tiny_xnnpack_fp32.pte, dotcom_tiny_xnnpack_q8.pte came back timed alone "
            "(no protocol.in_turn_with); is the app on the phone older than DOTCOM_IN_TURN? "
            f"See {out_dir / 'xcodebuild.log'}"]


def _manifest(artifact: Path) -> dict:
    return {
        "schema": "dotcom-mobile/manifest", "schema_version": 1,
        "artifact": {"file": artifact.name, "format": "pte", "size_bytes": 8, "sha256": "0" * 64},
        "model": "dotcom_tiny", "task": "classify", "num_classes": 2,
        "input": {"name": "image", "shape": [1, 3, 64, 64], "layout": "NCHW", "dtype": "float32"},
        "preprocessing": {"resize": 72, "crop": [64, 64], "interpolation": "bilinear",
                          "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "outputs": [{"name": "logits", "shape": [1, 2], "kind": "logits"}],
        "labels": ["a", "b"], "backend": "xnnpack", "quantization": "fp32", "versions": {},
    }


def test_stage_artifacts_replaces_previous_models(tmp_path, toy):
    from dotcom_mobile.devices.ios import check_artifact, stage_artifacts
    from dotcom_mobile.model.errors import DotcomError

    src = tmp_path / "src"
    src.mkdir()
    artifact = src / "dotcom_tiny_xnnpack_fp32.pte"
    artifact.write_bytes(b"12345678")
    with pytest.raises(DotcomError, match="is not an ExecuTorch program"):
        check_artifact(artifact)
    artifact.write_bytes(toy["xnnpack"].read_bytes())
    with pytest.raises(DotcomError, match="no manifest dotcom_tiny_xnnpack_fp32.json beside it"):
        check_artifact(artifact)
    (src / "dotcom_tiny_xnnpack_fp32.json").write_text(json.dumps(_manifest(artifact)))
    assert check_artifact(artifact)["model"] == "dotcom_tiny"
    with pytest.raises(DotcomError, match="runs .pte and .mlpackage"):
        check_artifact(src / "dotcom_tiny_xnnpack_fp32.json")

    staging = tmp_path / "BenchmarkModels"
    staging.mkdir()
    (staging / "README.md").write_text("keep")
    (staging / "old_model.pte").write_bytes(b"old")
    (staging / "old.mlpackage").mkdir()
    stage_artifacts([artifact], staging)
    assert sorted(p.name for p in staging.iterdir()) == [
        "README.md", "dotcom_tiny_xnnpack_fp32.json", "dotcom_tiny_xnnpack_fp32.pte"]
    assert (staging / "dotcom_tiny_xnnpack_fp32.pte").read_bytes() == toy["xnnpack"].read_bytes()
