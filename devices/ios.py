"""``dotcom-mobile ios``: benchmark artifacts on an iPhone through Xcode's test runner.

The iOS demo app (``ios_demo/``) has an XCTest target that benchmarks every model in
its ``BenchmarkModels`` folder with the app's own engines (ExecuTorch, Core ML) and
prints each latency report on one line of the test log. This command stages the
artifacts there, runs ``xcodebuild test`` against a connected phone, picks the reports
out of the log, validates them against latency-report v1 and prints the table, so the
phone's numbers land next to the host's in ``dotcom-mobile report``. With ``--in-turn``
the app loads them all and calls each once per step (``protocol.in_turn_with``), so a
phone that throttles as it warms up slows all of them alike and their ratio holds.

It needs macOS and Xcode; elsewhere it stops with one line saying so. The module's top
level imports only click and the standard library (``--help`` stays instant).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import click

IOS_DEMO = Path(__file__).resolve().parents[1] / "ios_demo"
PROJECT_NAME = "DoTCoMDemo.xcodeproj"
SCHEME = "DoTCoMDemo"
TEST_ID = "DoTCoMDemoBenchmarks/ModelBenchmarkTests/testBenchmarkEveryBundledModel"
STAGING = Path("DoTCoMDemoBenchmarks") / "BenchmarkModels"
#: Marker the XCTest target prints before each report (ModelBenchmarkTests.reportPrefix).
REPORT_PREFIX = "DOTCOM-REPORT-JSON: "
ARTIFACT_SUFFIXES = (".pte", ".mlpackage")
COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_ONLY")
#: --compute-units when not given: every unit, or one with --in-turn (each artifact is timed once there).
DEFAULT_COMPUTE_UNITS = ",".join(COMPUTE_UNITS)
IN_TURN_COMPUTE_UNITS = "ALL"


def _error(message: str) -> Exception:
    from dotcom_mobile.model.errors import DotcomError

    return DotcomError(message)


def require_xcode(platform: str | None = None, which=shutil.which) -> str:
    """Path of ``xcodebuild``; a one-line error off macOS or without Xcode."""
    platform = platform or sys.platform
    if platform != "darwin":
        raise _error(f"`dotcom-mobile ios` needs macOS with Xcode (xcodebuild); this machine runs {platform}. "
                     "Copy the artifacts to a Mac, or use the app's Benchmark screen and `dotcom-mobile report`.")
    xcodebuild = which("xcodebuild")
    if not xcodebuild:
        raise _error("xcodebuild not found: install Xcode and run `sudo xcode-select -s /Applications/Xcode.app`")
    return xcodebuild


def manifest_for(artifact: Path) -> Path:
    """``<stem>.json`` beside the artifact, as ``dotcom-mobile export`` writes it."""
    return artifact.with_suffix(".json")


def check_artifact(artifact: Path) -> dict[str, Any]:
    """The artifact's validated manifest; one-line errors for anything the app cannot run."""
    if not artifact.exists():
        raise _error(f"{artifact}: no such file")
    if artifact.suffix not in ARTIFACT_SUFFIXES:
        raise _error(f"{artifact}: the iOS app runs .pte and .mlpackage artifacts, not {artifact.suffix or 'this'}")
    if artifact.suffix == ".pte":
        from dotcom_mobile.export.pte import check_program

        check_program(artifact)  # a broken file fails here in one line, not after an Xcode build
    manifest = manifest_for(artifact)
    if not manifest.exists():
        raise _error(f"{artifact}: no manifest {manifest.name} beside it (written by `dotcom-mobile export`)")
    from dotcom_mobile.export.manifest import validate_manifest

    data = validate_manifest(manifest)
    if data["artifact"]["file"] != artifact.name:
        raise _error(f"{manifest}: describes {data['artifact']['file']}, not {artifact.name}")
    return data


def stage_artifacts(artifacts: Sequence[Path], folder: Path) -> list[Path]:
    """Replace the benchmark bundle's models with ``artifacts`` and their manifests.

    Everything but the README is removed first: the test target benchmarks every model
    it finds, and a leftover from an earlier run would be measured again.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.name == "README.md":
            continue
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
    staged = []
    for artifact in artifacts:
        target = folder / artifact.name
        if artifact.is_dir():
            shutil.copytree(artifact, target)
        else:
            shutil.copy2(artifact, target)
        shutil.copy2(manifest_for(artifact), folder / manifest_for(artifact).name)
        staged.append(target)
    return staged


def xcodebuild_command(xcodebuild: str, project: Path, device: str, result_bundle: Path,
                       team: str | None = None) -> list[str]:
    """The ``xcodebuild test`` argument list (no shell: device names contain spaces)."""
    cmd = [xcodebuild, "test", "-project", str(project), "-scheme", SCHEME,
           "-destination", f"platform=iOS,name={device}", "-only-testing:" + TEST_ID,
           "-resultBundlePath", str(result_bundle), "-allowProvisioningUpdates"]
    if team:
        cmd.append(f"DEVELOPMENT_TEAM={team}")
    return cmd


def test_environment(warmup: int, iters: int, repeats: int, compute_units: Iterable[str],
                     in_turn: bool = False) -> dict[str, str]:
    """Settings for the test process: xcodebuild hands ``TEST_RUNNER_X`` to it as ``X``.

    ``DOTCOM_IN_TURN`` is always set, to ``0`` too: a ``TEST_RUNNER_DOTCOM_IN_TURN=1``
    left in the shell must not turn a plain run into an in-turn one.
    """
    return {
        "TEST_RUNNER_DOTCOM_WARMUP": str(warmup),
        "TEST_RUNNER_DOTCOM_ITERATIONS": str(iters),
        "TEST_RUNNER_DOTCOM_REPEATS": str(repeats),
        "TEST_RUNNER_DOTCOM_COMPUTE_UNITS": ",".join(compute_units),
        "TEST_RUNNER_DOTCOM_IN_TURN": "1" if in_turn else "0",
    }


def check_in_turn(artifacts: Sequence[Path]) -> None:
    """One line unless ``artifacts`` are two or more different files for ``--in-turn``.

    Different by file name: the app sees them in one folder, and a report names its
    companions by artifact name.
    """
    names = [Path(a).name for a in artifacts]
    if len(names) < 2 or len(set(names)) != len(names):
        raise _error("--in-turn needs two or more artifacts with different file names (their ratio is the point)")


def parse_compute_units(compute_units: str | None, artifacts: Sequence[Path], in_turn: bool) -> list[str]:
    """The ``--compute-units`` list; with ``--in-turn`` one unit, since each .mlpackage is timed once."""
    raw = compute_units if compute_units is not None else (IN_TURN_COMPUTE_UNITS if in_turn else DEFAULT_COMPUTE_UNITS)
    units = [u.strip().upper() for u in raw.split(",") if u.strip()]
    bad = [u for u in units if u not in COMPUTE_UNITS]
    if bad or not units:
        raise _error(f"--compute-units: unknown {', '.join(bad) or 'empty list'} (choose from {', '.join(COMPUTE_UNITS)})")
    if in_turn and len(units) > 1 and any(Path(a).suffix == ".mlpackage" for a in artifacts):
        raise _error(f"--in-turn times each .mlpackage once: give one compute unit, not {','.join(units)}")
    return units


def parse_reports(lines: Iterable[str], *, source: str = "xcodebuild") -> list[dict[str, Any]]:
    """The latency reports printed by the XCTest target, validated against the schema."""
    from dotcom_mobile.report.latency import validate_report

    reports = []
    for number, line in enumerate(lines, 1):
        at = line.find(REPORT_PREFIX)
        if at < 0:
            continue
        payload = line[at + len(REPORT_PREFIX):].strip()
        try:
            report = json.loads(payload)
        except json.JSONDecodeError as e:
            raise _error(f"{source}, line {number}: truncated or malformed report ({e.msg})") from None
        reports.append(validate_report(report, source=f"{source}, line {number}"))
    return reports


def attachment_reports(result_bundle: Path, scratch: Path, run=subprocess.run) -> list[dict[str, Any]]:
    """Reports attached to the test result, for when the log lines did not come through.

    `xcrun xcresulttool export attachments` exists from Xcode 16; with older Xcodes, or
    when it fails, this returns nothing and the log lines stay the only source.
    """
    from dotcom_mobile.report.latency import validate_report

    if not result_bundle.exists():
        return []
    out = scratch / "attachments"
    done = run(["xcrun", "xcresulttool", "export", "attachments", "--path", str(result_bundle),
                "--output-path", str(out)], capture_output=True, text=True)
    if done.returncode != 0 or not out.is_dir():
        return []
    reports = []
    for path in sorted(out.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("schema") == "latency-report":
            reports.append(validate_report(data, source=f"{result_bundle.name}: {path.name}"))
    return reports


def with_chip(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with the phone's chip (``Apple A16``) and its CPU kind, where the model names a known chip.

    iOS has no /proc/cpuinfo and the app records only the model identifier
    (``iPhone15,2``); the chip's int8 instruction sets follow from the chip
    (``report/cpu.py``). A report that already names a kind, or an unknown model, is
    left as it is.
    """
    from dotcom_mobile.report import cpu

    device = report.get("device") or {}
    if device.get("cpu_kind") is not None:
        return report
    chip = cpu.apple_chip(device.get("model"), device.get("cpu"))
    features = cpu.apple_features(chip) if chip else None
    if chip and features is not None:
        device["cpu"] = device.get("cpu") or chip
        device.update(cpu.device_fields("arm64", features))
    return report


def _key(report: dict[str, Any]) -> tuple:
    return (report["artifact"]["name"], report["runtime"]["runner"], report["runtime"].get("compute_unit"))


def report_file_name(report: dict[str, Any]) -> str:
    """The project's report file name; Core ML runs also carry their compute units."""
    from dotcom_mobile.report.latency import report_filename

    name = report_filename(report)
    unit = report["runtime"].get("compute_unit")
    if report["runtime"]["runner"] == "coreml" and unit:
        name = name[: -len(".json")] + f"__{unit.lower()}.json"
    return name


def _fmt_ms(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else "-"


def format_table(reports: Sequence[dict[str, Any]]) -> str:
    """Plain-text table: one row per report."""
    from dotcom_mobile.report.render import runner_label

    header = ("artifact", "runner", "units", "cpu kind", "p50 ms", "p90 ms", "mean ms", "load ms", "memory MB",
              "thermal", "status")
    rows = [header]
    for r in reports:
        res = r.get("results") or {}
        mem = res.get("peak_memory_bytes")
        rows.append((
            r["artifact"]["name"], runner_label(r), r["runtime"].get("compute_unit") or "-",
            r["device"].get("cpu_kind") or "-",
            _fmt_ms(res.get("p50_ms")), _fmt_ms(res.get("p90_ms")), _fmt_ms(res.get("mean_ms")),
            _fmt_ms(res.get("load_ms")), f"{mem / 2**20:.0f}" if isinstance(mem, int) else "-",
            r["device"].get("thermal_state") or "-",
            r["status"] if r["status"] == "ok" else f"error: {r.get('error', '')}",
        ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def check_reports_in_turn(reports: Sequence[dict[str, Any]], log_path: Path | str) -> None:
    """One line unless every report read back was timed in turn (``protocol.in_turn_with``).

    An app built before ``DOTCOM_IN_TURN`` existed ignores it and times each artifact
    alone; its reports are still valid (and saved as such), but not what was asked for.
    """
    from dotcom_mobile.report.latency import timed_in_turn

    alone = [r["artifact"]["name"] for r in reports if not timed_in_turn(r)]
    if alone:
        raise _error(f"--in-turn: {', '.join(alone)} came back timed alone (no protocol.in_turn_with); "
                     f"is the app on the phone older than DOTCOM_IN_TURN? See {log_path}")


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def _first_error(log: Path) -> str:
    """The most telling line of a failed xcodebuild log."""
    lines = log.read_text(errors="replace").splitlines()
    for needle in ("Unable to find a destination", "error:", "Testing failed", "** TEST FAILED **"):
        for line in lines:
            if needle in line:
                return " ".join(line.split())[:300]
    return lines[-1].strip()[:300] if lines else "no output"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def ios() -> None:
    """Benchmark on an iPhone through Xcode (macOS only).

    \b
    Examples:
      dotcom-mobile ios bench out/dotcom_tiny_xnnpack_q8.pte --device "My iPhone"
      dotcom-mobile ios bench out/dotcom_tiny_coreml_fp16.pte out/dotcom_tiny_mlpackage_fp16.mlpackage \\
          --device "My iPhone" --team ABCDE12345 --iters 100
      dotcom-mobile ios bench fp32/dotcom_tiny_xnnpack_fp32.pte q8/dotcom_tiny_xnnpack_q8.pte \\
          --device "My iPhone" --in-turn
    """


@ios.command("bench")
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--device", required=True, metavar="NAME",
              help="Name of the connected iPhone as Xcode shows it (`xcrun xctrace list devices`).")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(min=0),
              help="Untimed runs after the first inference.")
@click.option("--iters", default=50, show_default=True, type=click.IntRange(min=1),
              help="Timed iterations per repeat.")
@click.option("--repeats", default=1, show_default=True, type=click.IntRange(min=1),
              help="Repeats of the timed iterations (all samples go into one report).")
@click.option("--compute-units", default=None, metavar="LIST",
              help="Core ML compute units to run each .mlpackage with (comma-separated: ALL, CPU_AND_NE, "
                   f"CPU_ONLY; default {DEFAULT_COMPUTE_UNITS}, or {IN_TURN_COMPUTE_UNITS} with --in-turn, "
                   "which takes one). .pte files keep the compute unit chosen at export.")
@click.option("--team", metavar="ID", default=None,
              help="Apple development team ID for code signing (DEVELOPMENT_TEAM), unless set in Xcode.")
@click.option("--out", "out_dir", default="reports", show_default=True, type=click.Path(path_type=Path),
              help="Folder for the reports (<artifact>__<runner>__t0.json) and xcodebuild.log.")
@click.option("--project", "project_dir", default=None, type=click.Path(path_type=Path),
              help=f"The ios_demo folder (default: {IOS_DEMO}).")
@click.option("--in-turn", is_flag=True,
              help="Time the artifacts together: all loaded in the app at once, each called once per step, so a "
                   "slow spell of the phone (thermal throttling) lands on all of them and their ratio (int8/fp32, "
                   "Core ML vs XNNPACK) holds. Reports are <stem>__<runner>-in-turn__t0.json and name the others "
                   "(protocol.in_turn_with).")
def bench(artifacts: tuple[Path, ...], device: str, warmup: int, iters: int, repeats: int, compute_units: str | None,
          team: str | None, out_dir: Path, project_dir: Path | None, in_turn: bool) -> None:
    """Benchmark ARTIFACTS (.pte or .mlpackage, manifest beside each) on a connected iPhone.

    Copies the artifacts and their manifests into the benchmark test bundle of the iOS
    demo app, runs `xcodebuild test` on the phone (build, install, run the XCTest
    benchmark), then collects one latency-report v1 JSON per artifact and engine
    configuration from the test log, validates it and prints the table. A .pte runs on
    ExecuTorch (runner `ios`), an .mlpackage on Core ML (runner `coreml`) once per
    compute unit. Feed the reports to `dotcom-mobile report`.

    With --in-turn the artifacts are timed in turn in one app process (every step calls
    each once), one report each, and every .mlpackage runs with one compute unit.

    Needs macOS, Xcode 15 or later, a phone in developer mode, and signing set up once in
    Xcode (or --team).
    """
    if in_turn:
        check_in_turn(artifacts)
    units = parse_compute_units(compute_units, artifacts, in_turn)
    paths = [Path(a).resolve() for a in artifacts]
    manifests = [check_artifact(p) for p in paths]  # first: a bad file is worth knowing on any machine
    xcodebuild = require_xcode()
    root = (project_dir or IOS_DEMO).resolve()
    project = root / PROJECT_NAME
    if not project.exists():
        raise _error(f"{project}: iOS demo project not found (run from a dotcom-mobile checkout or pass --project)")
    expected = sum(1 if p.suffix == ".pte" else len(units) for p in paths)  # --in-turn: one unit, one each

    out_dir.mkdir(parents=True, exist_ok=True)
    stage_artifacts(paths, root / STAGING)
    log_path = out_dir / "xcodebuild.log"
    click.echo(f"Running {len(paths)} artifact(s) on '{device}' through xcodebuild (log: {log_path})")
    env = {**os.environ, **test_environment(warmup, iters, repeats, units, in_turn)}
    reports: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dotcom-ios-") as tmp, open(log_path, "w") as log:
        cmd = xcodebuild_command(xcodebuild, project, device, Path(tmp) / "bench.xcresult", team)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=root, errors="replace")
        assert proc.stdout is not None
        with click.progressbar(length=expected, label="Benchmarks", show_pos=True) as bar:
            try:
                for number, line in enumerate(proc.stdout, 1):
                    log.write(line)
                    if REPORT_PREFIX in line:
                        reports += parse_reports([line], source=f"{log_path}, line {number}")
                        bar.update(1)
            except BaseException:
                proc.kill()
                raise
        returncode = proc.wait()
        if len(reports) < expected:
            seen = {_key(r) for r in reports}
            reports += [r for r in attachment_reports(Path(tmp) / "bench.xcresult", Path(tmp)) if _key(r) not in seen]
    if not reports:
        raise _error(f"xcodebuild failed (exit {returncode}) before any report: {_first_error(log_path)}")

    for report in reports:
        _write_json_atomic(out_dir / report_file_name(with_chip(report)), report)
    click.echo(format_table(reports))
    click.echo(f"{len(reports)} report(s) in {out_dir}/ (model: {', '.join(sorted({m['model'] for m in manifests}))})")
    if in_turn:
        check_reports_in_turn(reports, log_path)
    failed = [r for r in reports if r["status"] != "ok"]
    if failed or len(reports) < expected:
        missing = expected - len(reports)
        detail = f"{len(failed)} run(s) failed on the device" + (f", {missing} report(s) missing" if missing > 0 else "")
        raise _error(f"{detail}; see {log_path}")
