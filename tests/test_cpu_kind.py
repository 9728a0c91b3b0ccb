"""Per-CPU-kind performance (issue 13): instruction sets in the report, the kind in tables and targets.

The parsers are pure functions, checked on /proc/cpuinfo text in the formats real
kernels print (two Android phones in tests/fixtures, x86 flag lines below); the
host's own reports are produced by the real runners on this machine.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from dotcom_mobile.model import DotcomError
from dotcom_mobile.report import cpu
from dotcom_mobile.report.latency import make_report, validate_report, write_json_atomic

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# x86 `flags` lines as the kernel prints them (shortened to the relevant part plus neighbours).
SAPPHIRE_RAPIDS = ("flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c "
                   "avx2 smep bmi2 erms avx512f avx512dq rdseed adx avx512ifma avx512cd sha_ni avx512bw avx512vl "
                   "avx_vnni avx512_bf16 avx512vbmi umip pku avx512_vbmi2 gfni vaes avx512_vnni avx512_bitalg "
                   "avx512_vpopcntdq movdiri amx_bf16 avx512_fp16 amx_tile amx_int8 flush_l1d arch_capabilities")
CASCADE_LAKE = ("flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 smep bmi2 avx512f avx512dq "
                "avx512cd avx512bw avx512vl xsaveopt pku ospke avx512_vnni md_clear arch_capabilities")
SKYLAKE_X = "flags\t\t: fpu sse sse2 avx avx2 bmi2 avx512f avx512dq avx512cd avx512bw avx512vl"
EPYC_ZEN2 = "flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni clzero xsaveerptr"
ALDER_LAKE = "flags\t\t: fpu sse sse2 avx avx2 bmi2 sha_ni avx_vnni serialize"


def _two_cpus(flags_line: str) -> str:
    return "".join(f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: x\n{flags_line}\n\n" for i in range(2))


@pytest.mark.parametrize("fixture, kind, features", [
    ("cpuinfo_android_i8mm.txt", "arm64-i8mm", ["asimddp", "i8mm"]),
    ("cpuinfo_android_dotprod.txt", "arm64-dotprod", ["asimddp"]),
])
def test_android_cpuinfo_parses_to_its_kind(fixture, kind, features):
    text = (FIXTURES / fixture).read_text()
    arch, found = cpu.parse_cpuinfo(text)  # no ABI given: the text alone decides
    assert (arch, found) == ("arm64", features)
    assert cpu.cpu_kind(arch, found) == kind
    assert cpu.parse_cpuinfo(text, "arm64-v8a") == ("arm64", features)


def test_a_feature_counts_only_if_every_core_has_it():
    """A thread may run on any core: one core without i8mm makes the phone a dotprod phone."""
    text = (FIXTURES / "cpuinfo_android_i8mm.txt").read_text()
    blocks = text.split("\n\n")
    blocks[3] = blocks[3].replace(" i8mm", "")
    arch, found = cpu.parse_cpuinfo("\n\n".join(blocks))
    assert found == ["asimddp"] and cpu.cpu_kind(arch, found) == "arm64-dotprod"


@pytest.mark.parametrize("line, kind, features", [
    (SAPPHIRE_RAPIDS, "x86-amx", ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8"]),
    (CASCADE_LAKE, "x86-avx512-vnni", ["avx2", "avx512f", "avx512_vnni"]),
    (ALDER_LAKE, "x86-avx-vnni", ["avx2", "avx_vnni"]),
    (SKYLAKE_X, "x86-avx512", ["avx2", "avx512f"]),
    (EPYC_ZEN2, "x86-avx2", ["avx2"]),
    ("flags\t\t: fpu sse sse2", "x86", []),
])
def test_x86_flags_parse_to_their_kind(line, kind, features):
    arch, found = cpu.parse_cpuinfo(_two_cpus(line), "x86_64")
    assert (arch, found) == ("x86", features)
    assert cpu.cpu_kind(arch, found) == kind


def test_no_flags_is_unknown_not_none():
    assert cpu.parse_cpuinfo("processor\t: 0\nmodel name\t: something\n", "x86_64") == ("x86", None)
    assert cpu.device_fields("x86", None) == {"cpu_features": None, "cpu_kind": None}


def test_macos_sysctl():
    m2 = ("hw.optional.arm.FEAT_DotProd: 1\nhw.optional.arm.FEAT_I8MM: 1\nhw.optional.arm.FEAT_SME: 0\n"
          "hw.optional.arm.FEAT_BF16: 1\n")
    assert cpu.parse_sysctl(m2) == ["asimddp", "i8mm"]
    intel = "machdep.cpu.leaf7_features: RDWRFSGS TSC_THREAD_OFFSET BMI1 AVX2 SMEP BMI2 ERMS AVX512F AVX512VNNI\n"
    assert cpu.parse_sysctl(intel) == ["avx2", "avx512f", "avx512_vnni"]


@pytest.mark.parametrize("model, chip_cpu, chip, kind", [
    ("iPhone15,2", None, "Apple A16", "arm64-i8mm"),
    ("iPhone12,1", None, "Apple A13", "arm64-dotprod"),
    ("iPhone17,1", None, "Apple A18", "arm64-sme"),
    ("iPhone11,2", None, "Apple A12", "arm64"),
    ("Mac14,2", "Apple M2", "Apple M2", "arm64-i8mm"),
])
def test_apple_chip_kinds(model, chip_cpu, chip, kind):
    assert cpu.apple_chip(model, chip_cpu) == chip
    assert cpu.cpu_kind("arm64", cpu.apple_features(chip)) == kind


def test_ios_reports_get_the_chip_and_kind():
    from dotcom_mobile.devices.ios import with_chip

    report = _report("dotcom_tiny_xnnpack_q8.pte", 9.0, device=_device("ios", None, None, model="iPhone15,2", cpu=None))
    for key in ("cpu_features", "cpu_kind"):
        report["device"].pop(key)
    validate_report(report)  # an app report without the fields
    with_chip(report)
    assert report["device"]["cpu"] == "Apple A16" and report["device"]["cpu_kind"] == "arm64-i8mm"
    validate_report(report)
    unknown = _report("a.pte", 1.0, device=_device("ios", None, None, model="contract-test", cpu=None))
    assert with_chip(copy.deepcopy(unknown)) == unknown


# --------------------------------------------------------------------------- reports on this host


def _host_flags() -> list[set[str]]:
    text = Path("/proc/cpuinfo").read_text()
    return [set(line.split(":", 1)[1].split()) for line in text.splitlines()
            if line.split(":", 1)[0].strip() in ("flags", "Features")]


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs Linux /proc/cpuinfo")
def test_real_host_report_validates_and_carries_the_kind(toy, tmp_path):
    from dotcom_mobile.bench.runners import run_python
    from dotcom_mobile.report.render import text_table

    report = run_python(toy["xnnpack"], threads=1, warmup=1, iters=2, repeats=1)
    path = write_json_atomic(tmp_path / "r.json", report)
    device = validate_report(path)["device"]
    kind, features = device["cpu_kind"], device["cpu_features"]
    assert kind is not None and features is not None
    flags = _host_flags()
    # Every recorded feature is in every core's flags, and every relevant flag they share is recorded.
    assert set(features) == set.intersection(*flags) & set(cpu.FEATURES)
    if kind in cpu.KIND_FEATURE:
        assert cpu.KIND_FEATURE[kind] in features
    assert kind in text_table([report])  # beside the number


@pytest.mark.slow
def test_real_native_report_carries_the_host_kind(toy, tmp_path):
    from dotcom_mobile.bench.native import run_native
    from dotcom_mobile.report.host import cpu_device_fields

    report = run_native(toy["xnnpack"], threads=1, warmup=1, iters=2, repeats=1, out_json=tmp_path / "n.json")
    on_disk = validate_report(tmp_path / "n.json")
    assert on_disk["device"]["cpu_kind"] == report["device"]["cpu_kind"] == cpu_device_fields()["cpu_kind"]
    assert on_disk["device"]["cpu_kind"] is not None


def test_old_reports_without_the_fields_still_validate_and_render(toy):
    from dotcom_mobile.bench.runners import run_python
    from dotcom_mobile.report.render import markdown_table, text_table

    report = run_python(toy["xnnpack"], threads=1, warmup=0, iters=1, repeats=1)
    old = copy.deepcopy(report)
    del old["device"]["cpu_features"], old["device"]["cpu_kind"]
    validate_report(old)
    row = [ln for ln in text_table([old]).splitlines() if "toy_xnnpack_fp32.pte" in ln][0]
    assert " - " in row
    assert "cpu kind" in markdown_table([old, report]).splitlines()[0]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(cpu_kind="x86-amx"), "field device.cpu_kind: cpu_kind 'x86-amx' does not match"),
    (lambda d: d.update(cpu_features=["avx2", "avx512_vnni"]), "expected 'x86-avx512-vnni'"),
    (lambda d: d.update(cpu_features=["avx9000"]), "field device.cpu_features[0]:"),
    (lambda d: d.update(cpu_kind="AVX2!"), "field device.cpu_kind:"),
])
def test_a_kind_that_contradicts_its_features_is_one_line(tmp_path, mutate, message):
    report = _report("a.pte", 1.0, device=_device("linux", "x86-avx2", ["avx2"]))
    mutate(report["device"])
    path = write_json_atomic(tmp_path / "bad.json", report)
    with pytest.raises(DotcomError) as e:
        validate_report(path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


# --------------------------------------------------------------------------- perf_targets per kind


def _device(platform: str, kind: str | None, features: list[str] | None, **extra) -> dict:
    return {"platform": platform, "os": "x", "model": extra.get("model", "m"), "cpu": extra.get("cpu", f"cpu of {kind}"),
            "cores": 8, "threads": 2, "cpu_features": features, "cpu_kind": kind}


def _report(name: str, p50: float, *, device: dict, runner: str = "python") -> dict:
    quant = name.rsplit("_", 1)[-1].split(".")[0] if "_" in name else "fp32"
    model = "_".join(name.split("_")[:2]) if name.startswith("dotcom_") else None
    art = {"name": name, "backend": "xnnpack", "quantization": quant, "model": model,
           "input_shape": [1, 3, 256, 256]}
    return make_report(artifact=art, runner=runner, threads=2, warmup=0, iterations=3, repeats=1,
                       latencies_ms=[p50 * 0.9, p50, p50 * 1.2], device=copy.deepcopy(device))


def _fleet() -> list[dict]:
    spr = _device("linux", "x86-amx", ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8"])
    epyc = _device("linux", "x86-avx2", ["avx2"])
    phone = _device("android", "arm64-dotprod", ["asimddp"])
    return [_report("dotcom_tiny_xnnpack_fp32.pte", 20.0, device=spr), _report("dotcom_tiny_xnnpack_q8.pte", 9.0, device=spr),
            _report("dotcom_tiny_xnnpack_fp32.pte", 20.0, device=epyc), _report("dotcom_tiny_xnnpack_q8.pte", 22.0, device=epyc),
            _report("dotcom_tiny_xnnpack_fp32.pte", 30.0, device=phone), _report("dotcom_tiny_xnnpack_q8.pte", 12.0, device=phone),
            _report("dotcom_small_xnnpack_fp32.pte", 30.0, device=epyc)]  # no int8 partner: no row


def test_int8_ratios_are_grouped_per_kind_with_its_target():
    from dotcom_mobile.perf.perf_targets import format_kind_table, int8_ratios

    rows = int8_ratios(_fleet())
    by_kind = {r["cpu_kind"]: r for r in rows}
    assert [r["cpu_kind"] for r in rows] == ["arm64-dotprod", "x86-amx", "x86-avx2"]
    assert by_kind["x86-amx"]["ratio"] == pytest.approx(0.45) and by_kind["x86-amx"]["pass"] is True
    assert by_kind["x86-avx2"]["ratio"] == pytest.approx(1.1) and by_kind["x86-avx2"]["pass"] is False
    assert by_kind["x86-avx2"]["target"] == 0.8 and by_kind["arm64-dotprod"]["target"] is None
    table = format_kind_table(rows)
    assert "#### x86-amx: target int8 <= 0.5x fp32" in table
    assert "#### x86-avx2: target int8 <= 0.8x fp32" in table
    assert "#### arm64-dotprod: no target" in table
    assert "| 20.00 | 22.00 | 1.10 | FAIL |" in table


def test_a_live_runs_kind_table_reads_the_in_turn_ratio():
    # The per-target table of a run reads the ratio timed in turn; the per-kind table of
    # the same run must agree with it, not show the apart runs' ratio beside it.
    from dotcom_mobile.perf.perf_targets import format_kind_table, int8_ratios
    from dotcom_mobile.report.render import device_label

    fleet = _fleet()
    onnx = [_report("dotcom_tiny_onnxruntime_fp32.onnx", 20.0, device=fleet[2]["device"], runner="onnxruntime"),
            _report("dotcom_tiny_onnxruntime_q8.onnx", 30.0, device=fleet[2]["device"], runner="onnxruntime")]
    for r in onnx:
        r["artifact"]["model"] = "dotcom_tiny"
    epyc_label = device_label(fleet[2])
    pairs = {(epyc_label, "dotcom_tiny", 2): {"fp32_ms": 25.0, "q8_ms": 19.0, "ratio": 0.76, "rounds": 10}}
    rows = int8_ratios(fleet + onnx, pairs)
    python = [r for r in rows if r["runner"].startswith("python")]
    # The pair was timed on the EPYC: only its row reads it; the other devices keep their own.
    assert {(r["cpu_kind"], r["runner"]) for r in python} == {
        ("x86-avx2", "python, in turn"), ("x86-amx", "python"), ("arm64-dotprod", "python")}
    assert next(r for r in python if r["cpu_kind"] == "x86-amx")["ratio"] == pytest.approx(0.45)
    epyc = next(r for r in python if r["cpu_kind"] == "x86-avx2")
    assert (epyc["fp32_ms"], epyc["int8_ms"], epyc["pass"]) == (25.0, 19.0, True)
    assert epyc["ratio"] == pytest.approx(0.76)
    ort = next(r for r in rows if r["runner"] == "onnxruntime")
    assert ort["ratio"] == pytest.approx(1.5)  # other runners keep their own ratio
    assert "| python, in turn | 2 | 25.00 | 19.00 | 0.76 | PASS |" in format_kind_table(rows)
    assert {r["runner"] for r in int8_ratios(fleet)} == {"python"}  # without pairs: the reports' ratio


def test_perf_targets_reads_reports_per_kind(tmp_path, capsys):
    from dotcom_mobile.perf.perf_targets import main

    for i, r in enumerate(_fleet()):
        write_json_atomic(tmp_path / "reports" / f"{i}.json", r)
    assert main(["--reports", str(tmp_path / "reports")]) == 0
    out = capsys.readouterr().out
    assert "#### x86-avx2: target int8 <= 0.8x fp32" in out and "| 30.00 | 12.00 | 0.40 | no target |" in out


def test_perf_targets_reports_error_is_one_line(tmp_path, capsys):
    from dotcom_mobile.perf.perf_targets import main

    assert main(["--reports", str(tmp_path / "missing")]) == 1
    assert capsys.readouterr().err.strip() == f"Error: {tmp_path / 'missing'}: no such file or directory"


def test_json_summary_field_names_are_the_schema_names():
    schema = json.loads((Path(cpu.__file__).parent / "schemas" / "latency-report.v1.schema.json").read_text())
    device = schema["properties"]["device"]
    assert set(device["properties"]["cpu_features"]["items"]["enum"]) == set(cpu.FEATURES)
    assert "cpu_kind" not in device["required"] and "cpu_features" not in device["required"]


@pytest.mark.parametrize("kind, features, ratio_pass, bound", [
    ("x86-avx2", ["avx2"], True, "<= 0.8"),  # 0.75: passes AVX2's bound, would fail VNNI's 0.5
    ("x86-avx512", ["avx2", "avx512f"], True, "<= 0.8"),  # AVX-512 without VNNI: AVX2's bound
    ("x86-avx512-vnni", ["avx2", "avx512f", "avx512_vnni"], False, "<= 0.5"),
    ("arm64-dotprod", ["asimddp"], None, "no target"),
])
def test_one_run_targets_use_the_hosts_kind(kind, features, ratio_pass, bound):
    from dotcom_mobile.perf.perf_targets import evaluate, format_tables

    dev = _device("linux", kind, features)
    results = {"et_fp32": _report("dotcom_tiny_xnnpack_fp32.pte", 20.0, device=dev),
               "et_q8": _report("dotcom_tiny_xnnpack_q8.pte", 15.0, device=dev)}
    row = evaluate(results)[0]
    assert kind in row["target"] and row["ratio"] == pytest.approx(0.75) and row["pass"] is ratio_pass
    line = [ln for ln in format_tables({("dotcom_tiny", 2): results}).splitlines() if ln.startswith("| int8")][0]
    assert f"| 0.75 | {bound} |" in line


def test_reports_timed_in_turn_pair_among_themselves():
    """``bench --in-turn`` reports beside ones timed alone: two rows, the in-turn one labelled so."""
    from dotcom_mobile.perf.perf_targets import int8_ratios

    epyc = _device("linux", "x86-avx2", ["avx2"])
    alone = [_report("dotcom_tiny_xnnpack_fp32.pte", 20.0, device=epyc), _report("dotcom_tiny_xnnpack_q8.pte", 22.0, device=epyc)]
    turn = [_report("dotcom_tiny_xnnpack_fp32.pte", 25.0, device=epyc), _report("dotcom_tiny_xnnpack_q8.pte", 19.0, device=epyc)]
    for r, other in zip(turn, reversed(turn)):
        r["protocol"]["in_turn_with"] = [other["artifact"]["name"]]
    rows = {r["runner"]: r for r in int8_ratios(alone + turn)}
    assert set(rows) == {"python", "python, in turn"}
    assert rows["python"]["ratio"] == pytest.approx(1.1) and rows["python, in turn"]["ratio"] == pytest.approx(0.76)
