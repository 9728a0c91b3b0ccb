"""``dotcom-mobile android``: drive the Android demo app (``android_demo/``) over adb.

The app has a headless ``BenchmarkActivity`` that takes the intent extras of
ExecuTorch's own benchmark app (``model_dir``, ``num_iter``, ``num_warm_up_iter``,
``num_threads``) and writes ``files/benchmark_results.json`` as a latency-report v1.
``bench`` pushes an artifact with its manifest, lets the phone cool down, starts that
activity, polls for the report, validates it against the schema and stores it in the
report folder, so the phone's numbers land in the same ``dotcom-mobile report`` table
as the host's. Given several artifacts and ``--in-turn``, ``bench`` has the app time them
in turn in one run (``model_name`` as a comma-separated list; the result file is then a
JSON array, one report per artifact, each naming the others in ``protocol.in_turn_with``),
so a thermal slowdown of the phone lands on all of them and their latency ratio holds.

adb is always called with an argument list, never a shell string built from user
input; words sent to ``adb shell`` (which the device's shell parses again) are quoted
with :func:`shlex.quote`. The module's top level imports only click and the standard
library, so ``--help`` stays instant.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import click

#: applicationId of android_demo/app (build.gradle.kts).
PACKAGE = "org.dotcom.demo"
ACTIVITY = ".BenchmarkActivity"
#: Where pushed models live on the phone; the app lists this folder too.
DEVICE_DIR = "/data/local/tmp/dotcom"
#: The headless run's outputs, relative to the app's data folder (read with run-as).
RESULT_FILE = "files/benchmark_results.json"
MINIBENCH_FILE = "files/benchmark_results_minibench.json"
#: Seconds between two looks for the result file.
POLL_INTERVAL_S = 1.0
ADB_TIMEOUT_S = 120.0
THERMAL_NAMES = ("NONE", "LIGHT", "MODERATE", "SEVERE", "CRITICAL", "EMERGENCY", "SHUTDOWN")


def _error(message: str) -> Exception:
    from dotcom_mobile.model.errors import DotcomError

    return DotcomError(message)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


# --------------------------------------------------------------------------- adb


@dataclass(frozen=True)
class Device:
    """One line of ``adb devices``."""

    serial: str
    state: str  # device, unauthorized, offline, ...


class Adb:
    """The adb binary, optionally bound to one device serial; every call an argv list."""

    def __init__(self, exe: str, serial: str | None = None) -> None:
        self.exe = exe
        self.serial = serial

    @classmethod
    def find(cls, which: Callable[[str], str | None] = shutil.which) -> "Adb":
        """adb from ``$ADB`` or PATH; one clear line when there is none."""
        exe = os.environ.get("ADB") or which("adb")
        if not exe:
            raise _error("adb not found: install Android SDK platform-tools and put adb on PATH (or set ADB=/path/to/adb)")
        return cls(exe)

    def argv(self, *args: str) -> list[str]:
        return [self.exe, *(["-s", self.serial] if self.serial else []), *args]

    def run(self, *args: str, check: bool = True, timeout: float = ADB_TIMEOUT_S) -> subprocess.CompletedProcess:
        """Run ``adb [-s SERIAL] ARGS...``; with ``check`` a failure is one DotcomError line."""
        try:
            proc = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise _error(f"adb not found at {self.exe}") from None
        except subprocess.TimeoutExpired:
            raise _error(f"adb {args[0] if args else ''} did not answer within {timeout:.0f} s "
                         "(is the phone still connected and unlocked?)") from None
        if check and proc.returncode != 0:
            why = _last_line(proc.stderr) or _last_line(proc.stdout) or f"exit status {proc.returncode}"
            raise _error(f"adb {args[0] if args else ''} failed: {why}")
        return proc

    def shell(self, *words: str, check: bool = True, timeout: float = ADB_TIMEOUT_S) -> subprocess.CompletedProcess:
        """``adb shell`` with every word quoted for the device's shell."""
        return self.run("shell", " ".join(shlex.quote(w) for w in words), check=check, timeout=timeout)

    def devices(self) -> list[Device]:
        out = self.run("devices").stdout
        found = []
        for line in out.splitlines():
            line = line.strip()
            if not line or line.startswith(("List of devices", "*")):
                continue
            parts = line.split()
            if len(parts) >= 2:
                found.append(Device(parts[0], parts[1]))
        return found

    def getprop(self, name: str) -> str:
        return self.shell("getprop", name, check=False).stdout.strip()


def connect(serial: str | None = None, adb: Adb | None = None) -> Adb:
    """An :class:`Adb` bound to exactly one ready device, or one line saying why not."""
    adb = adb or Adb.find()
    devices = adb.devices()
    if serial:
        match = [d for d in devices if d.serial == serial]
        if not match:
            listed = ", ".join(d.serial for d in devices) or "none"
            raise _error(f"no device with serial {serial} (connected: {listed})")
        _check_state(match[0])
        return Adb(adb.exe, serial)
    ready = [d for d in devices if d.state == "device"]
    if not ready:
        if devices:
            _check_state(devices[0])
        raise _error("no Android device connected: plug one in with USB debugging on (adb devices lists none)")
    if len(ready) > 1:
        raise _error(f"{len(ready)} devices connected ({', '.join(d.serial for d in ready)}): choose one with --serial")
    return Adb(adb.exe, ready[0].serial)


def _check_state(device: Device) -> None:
    if device.state == "unauthorized":
        raise _error(f"device {device.serial} is unauthorized: accept the USB debugging prompt on the phone")
    if device.state != "device":
        raise _error(f"device {device.serial} is {device.state}: reconnect it (adb devices)")


# --------------------------------------------------------------------------- artifacts


def check_artifact(artifact: Path) -> tuple[Path, dict[str, Any]]:
    """(manifest path, validated manifest) of a ``.pte``; one line for anything the app cannot run."""
    from dotcom_mobile.model.files import require_file

    require_file(artifact)
    if artifact.suffix != ".pte":
        raise _error(f"{artifact}: the Android app runs ExecuTorch .pte files, not {artifact.suffix or 'this'}")
    from dotcom_mobile.export.pte import check_program

    check_program(artifact)  # a broken file fails here in one line, not on the phone
    manifest = artifact.with_suffix(".json")
    if not manifest.is_file():
        raise _error(f"{artifact}: no manifest {manifest.name} beside it (written by `dotcom-mobile export`)")
    from dotcom_mobile.export.manifest import validate_manifest

    data = validate_manifest(manifest)
    if data["artifact"]["file"] != artifact.name:
        raise _error(f"{manifest}: describes {data['artifact']['file']}, not {artifact.name}")
    if data["backend"] in ("coreml", "mlpackage"):
        raise _error(f"{artifact.name} is a {data['backend']} artifact: it runs on iOS (`dotcom-mobile ios`), not Android")
    return manifest, data


def push(adb: Adb, artifact: Path, manifest: Path, device_dir: str = DEVICE_DIR) -> str:
    """Copy the artifact and its manifest to ``device_dir``, readable by the app; returns the remote .pte path."""
    adb.shell("mkdir", "-p", device_dir)
    remote = f"{device_dir.rstrip('/')}/{artifact.name}"
    remote_manifest = f"{device_dir.rstrip('/')}/{manifest.name}"
    adb.run("push", str(artifact), remote, timeout=600)
    adb.run("push", str(manifest), remote_manifest)
    # The app runs as its own user: it needs to list the folder and read both files.
    adb.shell("chmod", "755", device_dir)
    adb.shell("chmod", "644", remote, remote_manifest)
    return remote


def require_app(adb: Adb, package: str) -> None:
    out = adb.shell("pm", "path", package, check=False)
    if out.returncode != 0 or "package:" not in out.stdout:
        raise _error(f"the demo app ({package}) is not installed on {adb.serial}: build android_demo "
                     "(./gradlew assembleDebug) and run `dotcom-mobile android install app-debug.apk`")


def thermal_status(adb: Adb) -> int | None:
    """PowerManager thermal status (0 = NONE) from ``dumpsys thermalservice``; None if unknown."""
    out = adb.shell("dumpsys", "thermalservice", check=False).stdout
    m = re.search(r"Thermal Status:\s*(\d+)", out)
    return int(m.group(1)) if m else None


def cool_down(adb: Adb, seconds: float, sleep: Callable[[float], None] = time.sleep) -> int | None:
    """Let the phone idle ``seconds``, then up to twice that more while it still reports heat."""
    if seconds <= 0:
        return thermal_status(adb)
    with click.progressbar(length=int(seconds), label=f"cooling down {seconds:g} s", file=click.get_text_stream("stderr")) as bar:
        for _ in range(int(seconds)):
            sleep(1.0)
            bar.update(1)
    status = thermal_status(adb)
    waited = 0.0
    while status not in (None, 0) and waited < 2 * seconds:
        sleep(5.0)
        waited += 5.0
        status = thermal_status(adb)
    if status not in (None, 0):
        name = THERMAL_NAMES[status] if 0 <= status < len(THERMAL_NAMES) else str(status)
        click.secho(f"warning: the phone is still {name} after {seconds + waited:g} s; numbers may be throttled", fg="yellow", err=True)
    return status


def start_benchmark(adb: Adb, package: str, device_dir: str, model_name: str, *, iters: int, warmup: int,
                    threads: int, cooldown: float) -> None:
    """``am start -W -S`` the headless activity with minibench-compatible extras."""
    out = adb.shell("am", "start", "-W", "-S", "-n", f"{package}/{ACTIVITY}",
                    "--es", "model_dir", device_dir, "--es", "model_name", model_name,
                    "--ei", "num_iter", str(iters), "--ei", "num_warm_up_iter", str(warmup),
                    "--ei", "num_threads", str(threads), "--ef", "cooldown_s", f"{cooldown:g}")
    text = out.stdout + out.stderr
    bad = [ln.strip() for ln in text.splitlines() if ln.strip().startswith(("Error", "Exception", "java."))]
    if bad:
        raise _error(f"am start failed on {adb.serial}: {bad[0]}")


def read_app_file(adb: Adb, package: str, path: str) -> str | None:
    """Text of a file in the app's data folder (``run-as``: needs a debuggable build), None if absent."""
    out = adb.shell("run-as", package, "cat", path, check=False)
    text = out.stdout + out.stderr
    if "not debuggable" in text or "unknown package" in text.lower():
        raise _error(f"cannot read {package}'s files: run-as said '{_last_line(text)}' (install a debug build)")
    if out.returncode != 0:
        return None
    return out.stdout


def wait_for_report(adb: Adb, package: str, timeout: float, sleep: Callable[[float], None] = time.sleep,
                    label: str = "benchmarking", in_turn: bool = False) -> dict[str, Any] | list[Any]:
    """Poll for the result file until it parses as JSON or ``timeout`` seconds pass.

    A run of one artifact leaves a report (an object); ``in_turn`` (several artifacts)
    also takes an array, the app's result for programs timed in turn, or an object (an
    app that failed before it could tell the programs apart says why in one report).
    """
    start = time.monotonic()
    with click.progressbar(length=max(int(timeout), 1), label=label, file=click.get_text_stream("stderr")) as bar:
        shown = 0
        while True:
            text = read_app_file(adb, package, RESULT_FILE)
            if text and text.strip():
                try:
                    data = json.loads(text)
                except json.JSONDecodeError:
                    data = None  # written atomically, so this is another tool's file: keep waiting
                if isinstance(data, dict) or (in_turn and isinstance(data, list)):
                    bar.update(bar.length - shown)
                    return data
            elapsed = time.monotonic() - start
            if elapsed >= timeout:
                raise _error(f"no benchmark result from {adb.serial} after {timeout:g} s "
                             f"(see `adb logcat -s DotcomBenchmark`)")
            bar.update(max(0, min(int(elapsed), bar.length) - shown))
            shown = max(shown, min(int(elapsed), bar.length))
            sleep(POLL_INTERVAL_S)


def cpu_fields(adb: Adb) -> dict[str, Any]:
    """``cpu_features`` and ``cpu_kind`` of the phone, from ``/proc/cpuinfo``'s Features over adb.

    The app does not read them itself; they are the same for every run on one phone,
    and the host parses them with the same code as its own (``report/cpu.py``).
    """
    from dotcom_mobile.report import cpu

    out = adb.shell("cat", "/proc/cpuinfo", check=False)
    arch, features = cpu.parse_cpuinfo(out.stdout if out.returncode == 0 else "", adb.getprop("ro.product.cpu.abi"))
    return cpu.device_fields(arch, features)


def with_cpu_fields(report: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """``report`` with the phone's CPU kind in its device section, unless it already names one."""
    device = report.get("device")
    if isinstance(device, dict) and device.get("cpu_kind") is None and fields.get("cpu_kind") is not None:
        device.update(fields)
    return report


def save_report(report: dict[str, Any], out_dir: Path, source: str) -> Path:
    """Validate against latency-report v1 and write it into ``out_dir`` (atomically)."""
    from dotcom_mobile.report.latency import report_filename, validate_report, write_json_atomic

    validate_report(report, source=source)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(out_dir / report_filename(report), report)


def check_distinct(artifacts: Sequence[Path]) -> None:
    """One line for an artifact given twice, before anything is pushed.

    On the phone a file name is one file, one entry of the app's ``model_name`` list
    and one report file, so two artifacts with one name would overwrite each other; the
    same one twice would be timed against itself. A comma cannot be listed either.
    """
    seen: dict[str, Path] = {}
    for artifact in artifacts:
        first = seen.setdefault(artifact.name, artifact)
        if first is artifact:
            continue
        if first.resolve() == artifact.resolve():
            raise _error(f"{artifact} is given twice: an in-turn run times each artifact once")
        raise _error(f"{first} and {artifact} have the same file name: on the phone one would overwrite the other "
                     "(rename one)")
    if len(artifacts) > 1:
        for artifact in artifacts:
            if "," in artifact.name:
                raise _error(f"{artifact.name}: the app takes several models as a comma-separated list, "
                             "so a name with a comma cannot be one of them (rename it)")


def run_reports(data: dict[str, Any] | list[Any], names: Sequence[str], source: str) -> list[dict[str, Any]]:
    """The validated reports of a run of ``names``, in their order; one line for anything else.

    Each report must be on its artifact. Of several artifacts (timed in turn) each must also
    name the others, in order, in ``protocol.in_turn_with``: a report without it was not
    timed in turn (an older app that took the list for one file name), and its ratio to the
    others would not hold.
    """
    from dotcom_mobile.report.latency import validate_report

    reports = data if isinstance(data, list) else [data]
    if len(reports) != len(names):
        errors = [_first_line(r.get("error")) for r in reports if isinstance(r, dict) and r.get("status") == "error"]
        why = f" ({errors[0]})" if errors and errors[0] else ""
        raise _error(f"{source}: {len(reports)} report(s) for {len(names)} artifacts{why}; an app without in-turn "
                     "runs? (install the current build)")
    for i, (report, name) in enumerate(zip(reports, names)):
        where = source if len(names) == 1 else f"{source}[{i}]"
        validate_report(report, source=where)
        if report["artifact"]["name"] != name:
            raise _error(f"{where}: reports on {report['artifact']['name']}, not {name} (an older app?)")
        others = [n for n in names if n != name]
        got = report["protocol"].get("in_turn_with")
        if others and got != others:
            raise _error(f"{where}: {name} was timed in turn with {', '.join(got) if got else 'nothing'}, "
                         f"not {', '.join(others)} (an older app?)")
    return reports


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def format_table(reports: Sequence[dict[str, Any]]) -> str:
    from dotcom_mobile.report.render import text_table

    return text_table(reports, columns=("device", "cpu kind", "artifact", "runner", "thr", "p50 ms", "p90 ms", "spread",
                                        "load ms", "peak MB", "delegated"))


# --------------------------------------------------------------------------- CLI

_serial_option = click.option("--serial", "-s", default=None, metavar="SERIAL",
                              help="Device serial (from `adb devices`); needed when several are connected.")
_package_option = click.option("--package", default=PACKAGE, show_default=True,
                               help="applicationId of the demo app, if you changed it.")
_dir_option = click.option("--device-dir", default=DEVICE_DIR, show_default=True,
                           help="Folder on the phone for pushed models (the app lists it).")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def android() -> None:
    """Drive the Android demo app (android_demo/) over adb: install, push, benchmark, pull.

    \b
    Examples:
      dotcom-mobile android doctor
      dotcom-mobile android install android_demo/app/build/outputs/apk/debug/app-debug.apk
      dotcom-mobile android push out/dotcom_tiny_xnnpack_q8.pte
      dotcom-mobile android bench out/dotcom_tiny_xnnpack_q8.pte --threads 4 --cooldown 30
      dotcom-mobile android bench out/dotcom_tiny_xnnpack_fp32.pte out/dotcom_tiny_xnnpack_q8.pte --threads 4
      dotcom-mobile report reports/
    """


@android.command()
@_serial_option
@_package_option
def doctor(serial: str | None, package: str) -> None:
    """Check adb, the connected devices (ABI, Android version, CPU kind) and whether the app is installed.

    \b
    Example:
      dotcom-mobile android doctor
    """
    adb = Adb.find()
    lines = adb.run("version").stdout.splitlines()
    version = lines[0].strip() if lines else ""
    click.echo(f"adb        {adb.exe} ({version or 'version unknown'})")
    devices = adb.devices()
    if serial:
        devices = [d for d in devices if d.serial == serial]
    if not devices:
        raise _error("no Android device connected: plug one in with USB debugging on (adb devices lists none)"
                     if not serial else f"no device with serial {serial}")
    for d in devices:
        if d.state != "device":
            click.echo(f"device     {d.serial}: {d.state}")
            continue
        dev = Adb(adb.exe, d.serial)
        model = f"{dev.getprop('ro.product.manufacturer')} {dev.getprop('ro.product.model')}".strip()
        abi = dev.getprop("ro.product.cpu.abi")
        release, sdk = dev.getprop("ro.build.version.release"), dev.getprop("ro.build.version.sdk")
        installed = "package:" in dev.shell("pm", "path", package, check=False).stdout
        click.echo(f"device     {d.serial}: {model or '?'}, {abi or '?'}, Android {release or '?'} (API {sdk or '?'})")
        if abi and abi not in ("arm64-v8a", "x86_64"):
            click.secho(f"           the ExecuTorch AAR ships arm64-v8a and x86_64 only, not {abi}", fg="yellow")
        cpu = cpu_fields(dev)
        features = ", ".join(cpu["cpu_features"]) if cpu["cpu_features"] else "none of the int8 ones"
        click.echo(f"cpu        {cpu['cpu_kind'] or 'unknown'} ({features if cpu['cpu_features'] is not None else 'no /proc/cpuinfo'})")
        click.echo(f"app        {package}: {'installed' if installed else 'not installed'}")


@android.command()
@click.argument("apk", type=click.Path(path_type=Path))
@_serial_option
def install(apk: Path, serial: str | None) -> None:
    """Install (or update) the demo app's APK, granting its camera permission.

    \b
    Example:
      dotcom-mobile android install android_demo/app/build/outputs/apk/debug/app-debug.apk
    """
    if not apk.exists():
        raise _error(f"{apk}: no such file (build it with `./gradlew assembleDebug` in android_demo/)")
    if apk.suffix != ".apk":
        raise _error(f"{apk}: not an .apk")
    import zipfile

    from dotcom_mobile.model.files import require_file

    if not zipfile.is_zipfile(require_file(apk)):  # an APK is a zip archive
        raise _error(f"{apk} is not an APK (not a zip archive)")
    adb = connect(serial)
    out = adb.run("install", "-r", "-g", str(apk), timeout=600)
    if "Success" not in out.stdout:
        raise _error(f"adb install failed: {_last_line(out.stdout + out.stderr)}")
    click.echo(f"installed {apk.name} on {adb.serial}")


@android.command(name="push")
@click.argument("artifact", type=click.Path(path_type=Path))
@_serial_option
@_dir_option
def push_command(artifact: Path, serial: str | None, device_dir: str) -> None:
    """Copy a .pte and its manifest (<stem>.json beside it) to the phone for the app.

    \b
    Example:
      dotcom-mobile android push out/dotcom_tiny_xnnpack_q8.pte
    """
    manifest, _ = check_artifact(artifact)
    adb = connect(serial)
    remote = push(adb, artifact, manifest, device_dir)
    click.echo(f"pushed {artifact.name} and {manifest.name} to {adb.serial}:{remote.rsplit('/', 1)[0]}")


@android.command()
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="ARTIFACT...")
@_serial_option
@click.option("--iters", default=50, show_default=True, type=click.IntRange(1), help="Timed iterations.")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(0), help="Untimed warm-up iterations.")
@click.option("--threads", default=0, show_default=True, type=click.IntRange(0),
              help="CPU threads for ExecuTorch (0: the runtime's default).")
@click.option("--cooldown", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Seconds to let the phone idle before the run (longer while it reports heat).")
@click.option("--out", "out_dir", default=Path("reports"), show_default=True, type=click.Path(path_type=Path),
              help="Report folder; a report is named <artifact>__android__t<threads>.json "
                   "(<artifact>__android-in-turn__t<threads>.json when timed in turn).")
@click.option("--timeout", default=600.0, show_default=True, type=click.FloatRange(1),
              help="Seconds to wait for the phone's result (of all artifacts, when several).")
@click.option("--in-turn", is_flag=True,
              help="Time two or more artifacts together: the app loads them all and calls each once per step, so "
                   "a thermal slowdown lands on all of them and their ratio (int8/fp32) holds. Reports name the "
                   "others (protocol.in_turn_with).")
@_package_option
@_dir_option
def bench(artifacts: tuple[Path, ...], serial: str | None, iters: int, warmup: int, threads: int, cooldown: float,
          out_dir: Path, timeout: float, in_turn: bool, package: str, device_dir: str) -> None:
    """Benchmark artifacts on the phone and store their latency reports.

    Pushes each .pte and its manifest, lets the phone cool down, starts the app's
    headless BenchmarkActivity (am start -W -S), waits for files/benchmark_results.json,
    validates it against latency-report v1, writes it into --out and prints the table.

    With --in-turn and several artifacts, the app loads them all and times them in turn in one run
    (every warm-up and timed call runs each once, in order): a thermal slowdown of the
    phone lands on all of them, so their latency ratio (int8/fp32) holds. Each gets its
    report, naming the others in protocol.in_turn_with; if one fails, all of them are
    error reports naming it.

    \b
    Examples:
      dotcom-mobile android bench out/dotcom_tiny_xnnpack_q8.pte
      dotcom-mobile android bench out/dotcom_tiny_xnnpack_q8.pte --serial R5CT1234 --threads 4 --cooldown 60
      dotcom-mobile android bench out/dotcom_tiny_xnnpack_fp32.pte out/dotcom_tiny_xnnpack_q8.pte --in-turn --threads 4
    """
    if len(artifacts) > 1 and not in_turn:
        raise _error(f"{len(artifacts)} artifacts: the app times several only together, give --in-turn "
                     "(or run bench once per artifact)")
    if in_turn and len(artifacts) < 2:
        raise _error("--in-turn needs two or more artifacts (their ratio is the point)")
    check_distinct(artifacts)
    manifests = [check_artifact(artifact)[0] for artifact in artifacts]
    adb = connect(serial)
    require_app(adb, package)
    for artifact, manifest in zip(artifacts, manifests):
        push(adb, artifact, manifest, device_dir)
    adb.shell("run-as", package, "rm", "-f", RESULT_FILE, MINIBENCH_FILE, check=False)
    cool_down(adb, cooldown)
    names = [artifact.name for artifact in artifacts]
    start_benchmark(adb, package, device_dir, ",".join(names), iters=iters, warmup=warmup, threads=threads,
                    cooldown=cooldown)
    what = f"{', '.join(names)} in turn" if in_turn else names[0]
    data = wait_for_report(adb, package, timeout, label=f"benchmarking {what} on {adb.serial}", in_turn=in_turn)
    source = f"{adb.serial}:{package}/{RESULT_FILE}"
    reports = run_reports(data, names, source)
    fields = cpu_fields(adb)
    paths = [save_report(with_cpu_fields(report, fields), out_dir, source=source) for report in reports]
    click.echo(format_table(reports))
    for path in paths:
        click.echo(f"report: {path}")
    failed = [(report, path) for report, path in zip(reports, paths) if report["status"] != "ok"]
    if failed:
        report, path = failed[0]
        raise _error(f"the benchmark failed on {adb.serial}: {_first_line(report.get('error')) or 'no message'} "
                     f"(full text in {path})")


@android.command()
@_serial_option
@click.option("--out", "out_dir", default=Path("reports"), show_default=True, type=click.Path(path_type=Path),
              help="Report folder.")
@click.option("--minibench", "minibench", default=None, type=click.Path(path_type=Path), metavar="FILE",
              help="Also save the minibench-style array there (keep it out of the report folder).")
@_package_option
def pull(serial: str | None, out_dir: Path, minibench: Path | None, package: str) -> None:
    """Fetch the app's last benchmark report (headless run) into the report folder.

    After an in-turn run (bench with several artifacts) that is one report per artifact.

    \b
    Example:
      dotcom-mobile android pull --out reports/
    """
    adb = connect(serial)
    require_app(adb, package)
    text = read_app_file(adb, package, RESULT_FILE)
    if not text or not text.strip():
        raise _error(f"no {RESULT_FILE} in {package} on {adb.serial}: run `dotcom-mobile android bench` first")
    try:
        report = json.loads(text)
    except json.JSONDecodeError as e:
        raise _error(f"{adb.serial}:{package}/{RESULT_FILE}: not JSON ({e.msg} at line {e.lineno})") from None
    source = f"{adb.serial}:{package}/{RESULT_FILE}"
    # An in-turn run (bench with several artifacts) leaves an array, one report per artifact.
    reports = report if isinstance(report, list) and report else [report]
    sources = [source] if len(reports) == 1 else [f"{source}[{i}]" for i in range(len(reports))]
    from dotcom_mobile.report.latency import validate_report

    for r, where in zip(reports, sources):  # all of them before any is saved
        validate_report(r, source=where)
    fields = cpu_fields(adb)
    paths = [save_report(with_cpu_fields(r, fields), out_dir, source=where) for r, where in zip(reports, sources)]
    if minibench is not None:
        mb = read_app_file(adb, package, MINIBENCH_FILE)
        if not mb:
            raise _error(f"no {MINIBENCH_FILE} in {package} on {adb.serial}")
        minibench.write_text(mb)
        click.echo(f"minibench: {minibench}")
    click.echo(format_table(reports))
    for path in paths:
        click.echo(f"report: {path}")
