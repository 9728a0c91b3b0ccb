"""`dotcom-mobile android` against a fake `adb` first on PATH.

The fake records every invocation (argv, and the words the device shell would see after
parsing the `adb shell` string) and plays a phone: it lists devices, accepts pushes,
answers `am start` and serves a result file after a few polls: either a fixed file
(`FAKE_ADB_RESULT`), or, like the app, the report of each model `am start` named
(`FAKE_ADB_REPORTS`, one `<artifact name>.json` each): one object for one name, an array
naming the others in `protocol.in_turn_with` for several. The CLI's behaviour is
checked end to end through `dotcom_mobile.cli.main`, the real entry point.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import sys
import zipfile
from pathlib import Path

import pytest

from dotcom_mobile.cli import main
from dotcom_mobile.devices import android

FAKE_ADB = r'''#!{python}
"""A fake adb: logs its argv and plays one phone."""
import json, os, shlex, sys

log = os.environ["FAKE_ADB_LOG"]
argv = sys.argv[1:]
with open(log, "a") as f:
    f.write(json.dumps(argv) + "\n")
if argv[:1] == ["-s"]:
    argv = argv[2:]
cmd = argv[0] if argv else ""
if cmd == "version":
    print("Android Debug Bridge version 1.0.41")
elif cmd == "devices":
    print("List of devices attached")
    for item in filter(None, os.environ.get("FAKE_ADB_DEVICES", "").split(",")):
        serial, state = item.split(":")
        print(f"{serial}\t{state}")
    print()
elif cmd == "push":
    if not os.path.isfile(argv[1]):
        print(f"adb: error: cannot stat '{argv[1]}': No such file or directory", file=sys.stderr)
        sys.exit(1)
    print(f"{argv[1]}: 1 file pushed, 0 skipped.")
elif cmd == "install":
    print("Performing Streamed Install")
    print("Success")
elif cmd == "shell":
    # adb joins its arguments with spaces and the device's sh parses the result.
    words = shlex.split(" ".join(argv[1:]))
    with open(log + ".shell", "a") as f:
        f.write(json.dumps(words) + "\n")
    if words[:2] == ["pm", "path"]:
        if os.environ.get("FAKE_ADB_NO_APP"):
            sys.exit(1)
        print("package:/data/app/org.dotcom.demo/base.apk")
    elif words[:1] == ["getprop"]:
        props = {"ro.product.model": "Pixel 8", "ro.product.manufacturer": "Google",
                 "ro.product.cpu.abi": "arm64-v8a", "ro.build.version.release": "15",
                 "ro.build.version.sdk": "35"}
        print(props.get(words[1], ""))
    elif words == ["cat", "/proc/cpuinfo"]:
        cpuinfo = os.environ.get("FAKE_ADB_CPUINFO")
        if not cpuinfo:
            print("cat: /proc/cpuinfo: Permission denied", file=sys.stderr)
            sys.exit(1)
        sys.stdout.write(open(cpuinfo).read())
    elif words[:2] == ["dumpsys", "thermalservice"]:
        print("IsStatusOverride: false\nThermal Status: 0")
    elif words[:2] == ["am", "start"]:
        if "model_name" in words:
            open(log + ".model_name", "w").write(words[words.index("model_name") + 1])
        print("Starting: Intent { cmp=org.dotcom.demo/.BenchmarkActivity (has extras) }")
        print("Status: ok\nLaunchState: COLD\nTotalTime: 412")
    elif words[:1] == ["run-as"] and words[2:3] == ["cat"]:
        counter = log + ".polls"
        polls = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
        open(counter, "w").write(str(polls))
        result = os.environ.get("FAKE_ADB_RESULT")
        folder = os.environ.get("FAKE_ADB_REPORTS")
        if (not result and not folder) or polls <= int(os.environ.get("FAKE_ADB_POLLS", "0")):
            print(f"cat: {words[3]}: No such file or directory", file=sys.stderr)
            sys.exit(1)
        if result:
            sys.stdout.write(open(result).read())
        else:  # as the app: one report per model named, timed in turn when several
            names = open(log + ".model_name").read().split(",")
            reports = [json.load(open(os.path.join(folder, name + ".json"))) for name in names]
            if len(reports) == 1:
                sys.stdout.write(json.dumps(reports[0]))
            else:
                for report, name in zip(reports, names):
                    report["protocol"]["in_turn_with"] = [n for n in names if n != name]
                sys.stdout.write(json.dumps(reports))
else:
    print(f"adb: unknown command {cmd}", file=sys.stderr)
    sys.exit(1)
'''


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    """Put the fake adb first on PATH; returns a helper to read what it was asked."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "adb"
    exe.write_text(FAKE_ADB.replace("{python}", sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "adb.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("ADB", raising=False)
    monkeypatch.setenv("FAKE_ADB_LOG", str(log))
    monkeypatch.setenv("FAKE_ADB_DEVICES", "R5CT1234:device")
    # A Cortex-X3/A715/A510 phone's /proc/cpuinfo, as its kernel prints it.
    monkeypatch.setenv("FAKE_ADB_CPUINFO", str(Path(__file__).parent / "fixtures" / "cpuinfo_android_i8mm.txt"))
    monkeypatch.setattr(android, "POLL_INTERVAL_S", 0.01)

    class Calls:
        def argv(self) -> list[list[str]]:
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        def shell(self) -> list[list[str]]:
            p = Path(f"{log}.shell")
            return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []

    return Calls()


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, toy) -> Path:
    """A small real program under a DoTCoM name, with a manifest written by the project's own writer."""
    from dotcom_mobile.export.manifest import build_manifest, write_manifest
    from dotcom_mobile.model import PreprocessConfig

    folder = tmp_path_factory.mktemp("artifact")
    pte = folder / "dotcom_tiny_xnnpack_q8.pte"
    pte.write_bytes(toy["xnnpack"].read_bytes())  # checked before anything is pushed; the phone is fake
    meta = {"model": "dotcom_tiny", "task": "classify", "num_classes": 4,
            "class_names": ["circle", "square", "triangle", "star"], "preprocess": PreprocessConfig()}
    manifest = build_manifest(artifact=pte, meta=meta, input_shape=(1, 3, 64, 64),
                              outputs=[{"name": "logits", "shape": [1, 4], "kind": "logits"}],
                              backend="xnnpack", quantization="q8",
                              delegation={"delegated_nodes": 99, "total_nodes": 100, "fraction": 0.99,
                                          "partitions": 1, "non_delegated_ops": {}})
    write_manifest(manifest, folder / "dotcom_tiny_xnnpack_q8.json")
    return pte


@pytest.fixture(scope="module")
def fp32_artifact(tmp_path_factory, artifact) -> Path:
    """The fp32 partner of ``artifact`` for in-turn runs (same bytes: the phone is fake), with its manifest."""
    from dotcom_mobile.export.manifest import build_manifest, write_manifest
    from dotcom_mobile.model import PreprocessConfig

    folder = tmp_path_factory.mktemp("fp32")
    pte = folder / "dotcom_tiny_xnnpack_fp32.pte"
    pte.write_bytes(artifact.read_bytes())
    q8 = json.loads(artifact.with_suffix(".json").read_text())
    meta = {"model": "dotcom_tiny", "task": "classify", "num_classes": 4, "class_names": q8["labels"],
            "preprocess": PreprocessConfig()}
    manifest = build_manifest(artifact=pte, meta=meta, input_shape=(1, 3, 64, 64),
                              outputs=[{"name": "logits", "shape": [1, 4], "kind": "logits"}],
                              backend="xnnpack", quantization="fp32", delegation=q8["delegation"])
    write_manifest(manifest, folder / "dotcom_tiny_xnnpack_fp32.json")
    return pte


def phone_report(latencies: list[float], *, status: str = "ok", threads: int = 2,
                 name: str = "dotcom_tiny_xnnpack_q8.pte", error: str | None = None) -> dict:
    """What the app writes (latency-report v1, runner android), statistics from report.stats."""
    from dotcom_mobile.report.stats import summarize

    results = None
    if status == "ok":
        results = {"load_ms": 35.2, "first_inference_ms": 21.0, "latencies_ms": latencies, **summarize(latencies),
                   "peak_memory_bytes": 84_000_000, "outputs_verified": None}
    return {
        "schema": "latency-report", "schema_version": 1,
        "artifact": {"name": name, "path": f"/data/local/tmp/dotcom/{name}",
                     "backend": "xnnpack", "quantization": name.rsplit("_", 1)[-1].split(".")[0],
                     "model": "dotcom_tiny", "task": "classify", "input_shape": [1, 3, 64, 64]},
        "device": {"platform": "android", "os": "Android 15 (API 35)", "model": "Google Pixel 8",
                   "cpu": "Google Tensor G3 (arm64-v8a)", "cores": 9, "threads": threads,
                   "thermal_state": "NONE", "cpu_freq_khz": [1704000] * 9, "memory_bytes": 8_000_000_000},
        "runtime": {"runner": "android", "executorch_version": "1.5.1"},
        "protocol": {"warmup": 3, "iterations": len(latencies), "repeats": 1, "input": "random",
                     "clock": "System.nanoTime"},
        "results": results,
        "delegation": {"delegated_nodes": 99, "total_nodes": 100, "fraction": 0.99, "partitions": 1,
                       "non_delegated_ops": {}},
        "status": status,
        "error": None if status == "ok" else (error or "cannot load dotcom_tiny_xnnpack_q8.pte: Error 0x20\n"
                                              "ExecuTorch log:\nE 00:00:00.1 executorch:method.cpp:112] Missing operator"),
        "created_at": "2026-11-24T01:00:00Z",
    }


def serve(tmp_path, monkeypatch, report: dict | str, polls: int = 2) -> None:
    path = tmp_path / "served.json"
    path.write_text(report if isinstance(report, str) else json.dumps(report))
    monkeypatch.setenv("FAKE_ADB_RESULT", str(path))
    monkeypatch.setenv("FAKE_ADB_POLLS", str(polls))


def serve_as_app(tmp_path, monkeypatch, reports: list[dict], polls: int = 0) -> None:
    """The fake answers as the app would for the models `am start` names, from these reports."""
    folder = tmp_path / "phone_reports"
    folder.mkdir(exist_ok=True)
    for report in reports:
        (folder / f"{report['artifact']['name']}.json").write_text(json.dumps(report))
    monkeypatch.delenv("FAKE_ADB_RESULT", raising=False)
    monkeypatch.setenv("FAKE_ADB_REPORTS", str(folder))
    monkeypatch.setenv("FAKE_ADB_POLLS", str(polls))


def test_bench_end_to_end(fake_adb, artifact, tmp_path, monkeypatch, capsys):
    serve(tmp_path, monkeypatch, phone_report([20.0, 22.5, 21.0, 30.0]), polls=2)
    out = tmp_path / "reports"
    rc = main(["android", "bench", str(artifact), "--iters", "4", "--warmup", "3", "--threads", "2",
               "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err

    argv = fake_adb.argv()
    # Every call went to the one connected device, as an argument list.
    assert all(a[:2] == ["-s", "R5CT1234"] for a in argv if a[0] not in ("devices",))
    pushes = [a[2:] for a in argv if a[2:3] == ["push"]]
    assert pushes == [["push", str(artifact), "/data/local/tmp/dotcom/dotcom_tiny_xnnpack_q8.pte"],
                      ["push", str(artifact.with_suffix(".json")), "/data/local/tmp/dotcom/dotcom_tiny_xnnpack_q8.json"]]

    shell = fake_adb.shell()
    start = next(w for w in shell if w[:2] == ["am", "start"])
    assert start[2:6] == ["-W", "-S", "-n", "org.dotcom.demo/.BenchmarkActivity"]
    extras = dict(zip(start[7::3], start[8::3]))
    assert extras == {"model_dir": "/data/local/tmp/dotcom", "model_name": "dotcom_tiny_xnnpack_q8.pte",
                      "num_iter": "4", "num_warm_up_iter": "3", "num_threads": "2", "cooldown_s": "0"}
    # The old result is removed before the start, and the result is polled until it appears.
    order = [" ".join(w[:2]) for w in shell]
    assert order.index("run-as org.dotcom.demo") < order.index("am start")
    cats = [w for w in shell if w[:1] == ["run-as"] and w[2:3] == ["cat"]]
    assert len(cats) == 3 and cats[0][3] == "files/benchmark_results.json"

    saved = out / "dotcom_tiny_xnnpack_q8__android__t2.json"
    report = json.loads(saved.read_text())
    from dotcom_mobile.report.latency import validate_report

    validate_report(report)
    assert report["results"]["latencies_ms"] == [20.0, 22.5, 21.0, 30.0]
    # The phone's int8 instruction sets, read from its /proc/cpuinfo over adb (the app does not write them).
    assert report["device"]["cpu_features"] == ["asimddp", "i8mm"] and report["device"]["cpu_kind"] == "arm64-i8mm"
    assert "arm64-i8mm" in captured.out
    # The table shows the phone's numbers.
    assert "dotcom_tiny_xnnpack_q8.pte" in captured.out
    assert "21.75" in captured.out  # p50 of the four latencies
    assert str(saved) in captured.out


def test_bench_quotes_device_dir_for_the_device_shell(fake_adb, artifact, tmp_path, monkeypatch, capsys):
    serve(tmp_path, monkeypatch, phone_report([5.0, 6.0]), polls=0)
    weird = "/data/local/tmp/my models/it's \"here\"; rm -rf $HOME"
    rc = main(["android", "bench", str(artifact), "--device-dir", weird, "--out", str(tmp_path / "r")])
    assert rc == 0, capsys.readouterr().err
    shell = fake_adb.shell()
    # After the device shell parses the quoted string, the folder is still one word.
    assert ["mkdir", "-p", weird] in shell
    assert ["chmod", "755", weird] in shell
    start = next(w for w in shell if w[:2] == ["am", "start"])
    assert start[start.index("model_dir") + 1] == weird
    # adb push takes the remote path as its own argument (no shell involved).
    assert [a for a in fake_adb.argv() if a[2:3] == ["push"]][0][4] == f"{weird}/dotcom_tiny_xnnpack_q8.pte"
    # Each `adb shell` call is one argument holding a quoted command line.
    raw = [a[3:] for a in fake_adb.argv() if a[2:3] == ["shell"]]
    assert all(len(r) == 1 for r in raw)
    with_dir = [r[0] for r in raw if weird in shlex.split(r[0])]
    assert len(with_dir) >= 3 and all(shlex.quote(weird) in r for r in with_dir)


def test_bench_reports_failure_from_the_phone(fake_adb, artifact, tmp_path, monkeypatch, capsys):
    serve(tmp_path, monkeypatch, phone_report([], status="error"), polls=0)
    out = tmp_path / "reports"
    rc = main(["android", "bench", str(artifact), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    saved = out / "dotcom_tiny_xnnpack_q8__android__t2.json"
    assert err.strip().splitlines()[-1] == (
        f"Error: the benchmark failed on R5CT1234: cannot load dotcom_tiny_xnnpack_q8.pte: Error 0x20 (full text in {saved})")
    assert "Traceback" not in err
    # The error report is kept: it is valid and says what happened.
    assert json.loads(saved.read_text())["error"].endswith("Missing operator")


def test_bench_rejects_a_malformed_report_naming_the_field(fake_adb, artifact, tmp_path, monkeypatch, capsys):
    bad = phone_report([5.0])
    bad["results"]["p50_ms"] = -1
    serve(tmp_path, monkeypatch, bad, polls=0)
    out = tmp_path / "reports"
    rc = main(["android", "bench", str(artifact), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "R5CT1234:org.dotcom.demo/files/benchmark_results.json: field results.p50_ms" in err
    assert not out.exists() or not any(out.iterdir())


def test_bench_times_out_with_one_line(fake_adb, artifact, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FAKE_ADB_RESULT", raising=False)
    rc = main(["android", "bench", str(artifact), "--timeout", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "no benchmark result from R5CT1234 after 1 s" in err


def test_no_adb(tmp_path, monkeypatch, artifact, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no adb anywhere
    monkeypatch.delenv("ADB", raising=False)
    rc = main(["android", "bench", str(artifact)])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip().splitlines() == [
        "Error: adb not found: install Android SDK platform-tools and put adb on PATH (or set ADB=/path/to/adb)"]


def test_no_device(fake_adb, artifact, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_ADB_DEVICES", "")
    rc = main(["android", "bench", str(artifact)])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip().splitlines() == [
        "Error: no Android device connected: plug one in with USB debugging on (adb devices lists none)"]


def test_unauthorized_device(fake_adb, artifact, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_ADB_DEVICES", "R5CT1234:unauthorized")
    assert main(["android", "push", str(artifact)]) == 1
    assert "R5CT1234 is unauthorized: accept the USB debugging prompt" in capsys.readouterr().err


def test_several_devices_need_serial(fake_adb, artifact, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_ADB_DEVICES", "R5CT1234:device,emulator-5554:device")
    rc = main(["android", "bench", str(artifact)])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip().splitlines() == [
        "Error: 2 devices connected (R5CT1234, emulator-5554): choose one with --serial"]
    # With --serial it goes to that one.
    serve(tmp_path, monkeypatch, phone_report([5.0]), polls=0)
    assert main(["android", "bench", str(artifact), "--serial", "emulator-5554", "--out", str(tmp_path / "r")]) == 0
    assert any(a[:2] == ["-s", "emulator-5554"] and a[2:4] == ["shell", "am start -W -S -n "
               "org.dotcom.demo/.BenchmarkActivity --es model_dir /data/local/tmp/dotcom --es model_name "
               "dotcom_tiny_xnnpack_q8.pte --ei num_iter 50 --ei num_warm_up_iter 10 --ei num_threads 0 "
               "--ef cooldown_s 0"] for a in fake_adb.argv())
    assert main(["android", "push", str(artifact), "--serial", "nope"]) == 1
    assert "no device with serial nope (connected: R5CT1234, emulator-5554)" in capsys.readouterr().err


def test_app_not_installed(fake_adb, artifact, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_ADB_NO_APP", "1")
    assert main(["android", "bench", str(artifact)]) == 1
    assert "the demo app (org.dotcom.demo) is not installed on R5CT1234" in capsys.readouterr().err


def test_artifact_without_manifest(fake_adb, artifact, tmp_path, capsys):
    pte = tmp_path / "m_xnnpack_fp32.pte"
    pte.write_bytes(b"x")
    assert main(["android", "push", str(pte)]) == 1
    assert capsys.readouterr().err == f"Error: {pte} is not an ExecuTorch program (only 1 bytes)\n"
    pte.write_bytes(artifact.read_bytes())
    assert main(["android", "push", str(pte)]) == 1
    assert "no manifest m_xnnpack_fp32.json beside it" in capsys.readouterr().err
    assert fake_adb.argv() == []  # nothing was sent to the phone


def test_push_install_doctor_pull(fake_adb, artifact, tmp_path, monkeypatch, capsys):
    assert main(["android", "push", str(artifact)]) == 0
    assert ["chmod", "644", "/data/local/tmp/dotcom/dotcom_tiny_xnnpack_q8.pte",
            "/data/local/tmp/dotcom/dotcom_tiny_xnnpack_q8.json"] in fake_adb.shell()

    apk = tmp_path / "app-debug.apk"
    with zipfile.ZipFile(apk, "w") as z:  # an APK is a zip archive; adb is fake
        z.writestr("AndroidManifest.xml", "<manifest/>")
    assert main(["android", "install", str(apk)]) == 0
    assert ["-s", "R5CT1234", "install", "-r", "-g", str(apk)] in fake_adb.argv()

    assert main(["android", "doctor"]) == 0
    out = capsys.readouterr().out
    assert "R5CT1234: Google Pixel 8, arm64-v8a, Android 15 (API 35)" in out
    assert "org.dotcom.demo: installed" in out
    assert "cpu        arm64-i8mm (asimddp, i8mm)" in out

    serve(tmp_path, monkeypatch, phone_report([7.0, 8.0], threads=4), polls=0)
    assert main(["android", "pull", "--out", str(tmp_path / "pulled")]) == 0
    assert (tmp_path / "pulled" / "dotcom_tiny_xnnpack_q8__android__t4.json").is_file()


def test_bench_rejects_a_report_on_another_artifact(fake_adb, artifact, tmp_path, monkeypatch, capsys):
    other = phone_report([5.0])
    other["artifact"]["name"] = "dotcom_small_xnnpack_q8.pte"
    serve(tmp_path, monkeypatch, other, polls=0)
    out = tmp_path / "reports"
    assert main(["android", "bench", str(artifact), "--out", str(out)]) == 1
    assert "reports on dotcom_small_xnnpack_q8.pte, not dotcom_tiny_xnnpack_q8.pte" in capsys.readouterr().err
    assert not out.exists()


def test_bench_without_a_readable_cpuinfo_leaves_the_kind_out(fake_adb, artifact, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FAKE_ADB_CPUINFO")
    serve(tmp_path, monkeypatch, phone_report([5.0, 6.0]), polls=0)
    assert main(["android", "bench", str(artifact), "--threads", "2", "--out", str(tmp_path / "r")]) == 0, \
        capsys.readouterr().err
    report = json.loads((tmp_path / "r" / "dotcom_tiny_xnnpack_q8__android__t2.json").read_text())
    assert report["device"].get("cpu_kind") is None  # unknown is not invented


def test_bench_in_turn_end_to_end(fake_adb, artifact, fp32_artifact, tmp_path, monkeypatch, capsys):
    """Two artifacts: one app run times them in turn; two reports, each naming the other."""
    serve_as_app(tmp_path, monkeypatch, [phone_report([20.0, 22.5, 21.0, 30.0], name=fp32_artifact.name),
                                         phone_report([12.0, 13.0, 12.5, 14.0], name=artifact.name)], polls=2)
    out = tmp_path / "reports"
    rc = main(["android", "bench", str(fp32_artifact), str(artifact), "--in-turn", "--iters", "4", "--warmup", "3",
               "--threads", "2", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err

    pushes = [a[3:] for a in fake_adb.argv() if a[2:3] == ["push"]]
    assert pushes == [[str(p), f"/data/local/tmp/dotcom/{p.name}"]
                      for pte in (fp32_artifact, artifact) for p in (pte, pte.with_suffix(".json"))]
    starts = [w for w in fake_adb.shell() if w[:2] == ["am", "start"]]
    assert len(starts) == 1  # one app run for both
    extras = dict(zip(starts[0][7::3], starts[0][8::3]))
    assert extras["model_name"] == "dotcom_tiny_xnnpack_fp32.pte,dotcom_tiny_xnnpack_q8.pte"

    from dotcom_mobile.report.latency import timed_in_turn, validate_report

    saved = {p: out / f"{p.stem}__android-in-turn__t2.json" for p in (fp32_artifact, artifact)}
    assert sorted(out.iterdir()) == sorted(saved.values())
    fp32, q8 = (validate_report(saved[p]) for p in (fp32_artifact, artifact))
    assert fp32["protocol"]["in_turn_with"] == [artifact.name]
    assert q8["protocol"]["in_turn_with"] == [fp32_artifact.name]
    assert timed_in_turn(fp32) and timed_in_turn(q8)
    assert fp32["results"]["latencies_ms"] == [20.0, 22.5, 21.0, 30.0]
    assert q8["results"]["latencies_ms"] == [12.0, 13.0, 12.5, 14.0]
    assert fp32["device"]["cpu_kind"] == q8["device"]["cpu_kind"] == "arm64-i8mm"
    # One table with both rows, marked as timed in turn, and both files named.
    rows = [ln for ln in captured.out.splitlines() if "dotcom_tiny_xnnpack_" in ln and "in turn" in ln]
    assert len(rows) == 2 and "21.75" in rows[0] and "12.75" in rows[1]
    assert f"report: {saved[fp32_artifact]}" in captured.out and f"report: {saved[artifact]}" in captured.out

    # The pair is one row of the per-CPU-kind int8/fp32 table (perf_targets --reports), as in turn.
    from dotcom_mobile.perf.perf_targets import int8_ratios

    row, = int8_ratios([fp32, q8])
    assert (row["cpu_kind"], row["runner"], row["threads"]) == ("arm64-i8mm", "android, in turn", 2)
    assert row["ratio"] == pytest.approx(12.75 / 21.75)

    # `pull` takes the array again.
    assert main(["android", "pull", "--out", str(tmp_path / "pulled")]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "pulled").iterdir()) == sorted(p.name for p in saved.values())


def test_bench_with_one_artifact_serves_one_report_as_before(fake_adb, artifact, tmp_path, monkeypatch, capsys):
    serve_as_app(tmp_path, monkeypatch, [phone_report([5.0, 6.0], name=artifact.name)])
    out = tmp_path / "reports"
    assert main(["android", "bench", str(artifact), "--threads", "2", "--out", str(out)]) == 0, capsys.readouterr().err
    report = json.loads((out / "dotcom_tiny_xnnpack_q8__android__t2.json").read_text())
    assert "in_turn_with" not in report["protocol"]


def test_bench_refuses_the_same_artifact_twice(fake_adb, artifact, tmp_path, capsys):
    assert main(["android", "bench", str(artifact), str(artifact), "--in-turn"]) == 1
    assert capsys.readouterr().err == f"Error: {artifact} is given twice: an in-turn run times each artifact once\n"
    other = tmp_path / artifact.name  # another file with the same name would overwrite it on the phone
    other.write_bytes(artifact.read_bytes())
    assert main(["android", "bench", str(artifact), str(other), "--in-turn"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "have the same file name" in err and "Traceback" not in err
    assert fake_adb.argv() == []  # nothing was pushed


def test_bench_of_several_artifacts_asks_for_in_turn(fake_adb, artifact, fp32_artifact, capsys):
    """Several artifacts are only timed together, so that is asked for by name; --in-turn alone needs two."""
    assert main(["android", "bench", str(fp32_artifact), str(artifact)]) == 1
    assert capsys.readouterr().err == ("Error: 2 artifacts: the app times several only together, give --in-turn "
                                       "(or run bench once per artifact)\n")
    assert main(["android", "bench", str(artifact), "--in-turn"]) == 1
    assert capsys.readouterr().err == "Error: --in-turn needs two or more artifacts (their ratio is the point)\n"
    assert fake_adb.argv() == []


def test_bench_in_turn_error_names_the_failing_program(fake_adb, artifact, fp32_artifact, tmp_path, monkeypatch,
                                                        capsys):
    """One program failed: every member is an error report naming it; all are saved, the exit is one line."""
    why = "dotcom_tiny_xnnpack_q8.pte: inference failed: Error 0x12\nExecuTorch log:\nE 00:00 method.cpp:99]"
    serve_as_app(tmp_path, monkeypatch, [phone_report([], status="error", name=fp32_artifact.name, error=why),
                                         phone_report([], status="error", name=artifact.name, error=why)])
    out = tmp_path / "reports"
    rc = main(["android", "bench", str(fp32_artifact), str(artifact), "--in-turn", "--threads", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    first = out / "dotcom_tiny_xnnpack_fp32__android-in-turn__t2.json"
    assert err.strip().splitlines()[-1] == (
        f"Error: the benchmark failed on R5CT1234: dotcom_tiny_xnnpack_q8.pte: inference failed: Error 0x12 "
        f"(full text in {first})")
    assert "Traceback" not in err
    from dotcom_mobile.report.latency import validate_report

    for pte in (fp32_artifact, artifact):
        report = validate_report(out / f"{pte.stem}__android-in-turn__t2.json")
        assert report["status"] == "error" and report["error"] == why
        assert report["protocol"]["in_turn_with"] == [p.name for p in (fp32_artifact, artifact) if p != pte]


def test_bench_in_turn_refuses_reports_not_timed_in_turn(fake_adb, artifact, fp32_artifact, tmp_path, monkeypatch,
                                                         capsys):
    """An array without in_turn_with, or one report for two artifacts (an older app): one line, nothing saved."""
    out = tmp_path / "reports"
    serve(tmp_path, monkeypatch, json.dumps([phone_report([5.0], name=fp32_artifact.name),
                                             phone_report([4.0], name=artifact.name)]), polls=0)
    assert main(["android", "bench", str(fp32_artifact), str(artifact), "--in-turn", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "Error: R5CT1234:org.dotcom.demo/files/benchmark_results.json[0]: dotcom_tiny_xnnpack_fp32.pte was timed in "
        "turn with nothing, not dotcom_tiny_xnnpack_q8.pte (an older app?)")
    old_app = phone_report([], status="error", error="no model dotcom_tiny_xnnpack_fp32.pte,dotcom_tiny_xnnpack_q8.pte "
                                                      "in /data/local/tmp/dotcom")
    serve(tmp_path, monkeypatch, old_app, polls=0)
    assert main(["android", "bench", str(fp32_artifact), str(artifact), "--in-turn", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "Error: R5CT1234:org.dotcom.demo/files/benchmark_results.json: 1 report(s) for 2 artifacts (no model "
        "dotcom_tiny_xnnpack_fp32.pte,dotcom_tiny_xnnpack_q8.pte in /data/local/tmp/dotcom); an app without in-turn "
        "runs? (install the current build)")
    assert not out.exists()
