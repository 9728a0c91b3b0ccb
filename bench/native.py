"""Build and drive the native C++ benchmark runner (``runner/``).

Why a native runner at all: the Python runner times ExecuTorch through pybind11,
while an app times the C++ runtime directly. ``dotcom_runner`` is that C++ path on
this machine (and, cross-compiled with the NDK, on an Android shell), writing the
same latency-report v1 as every other runner, so the two can be compared number
for number.

    python -m dotcom_mobile.bench.native build [--force]     # what `make runner` runs
    python -m dotcom_mobile.bench.native run MODEL.pte [--threads 2 ...]
    python -m dotcom_mobile.bench.native compare MODEL.pte --threads 1,2  # vs the Python runner

The binary is built with CMake + Ninja against the installed executorch wheel
(``find_package(executorch)`` with ``CMAKE_PREFIX_PATH`` at the package folder) into
``runner/build`` and rebuilt only when a source file or the wheel changed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

from dotcom_mobile.model import DotcomError

ROOT = Path(__file__).resolve().parents[1]
RUNNER_SRC = ROOT / "runner"
BUILD_DIR = RUNNER_SRC / "build"
BINARY_NAME = "dotcom_runner"
SCHEMA_PATH = ROOT / "report" / "schemas" / "latency-report.v1.schema.json"

# Fields a manifest (<artifact stem>.json beside the .pte) adds to the report: the
# binary only sees bytes, the manifest knows what model and delegation they hold.
_MANIFEST_ARTIFACT_FIELDS = ("model", "task", "backend", "quantization")


def executorch_prefix() -> Path:
    """The installed executorch package folder: the ``CMAKE_PREFIX_PATH`` for find_package.

    ``executorch`` is a namespace package in the wheel (``__file__`` is None), so the
    folder comes from ``__path__``.
    """
    try:
        import executorch
    except ImportError as exc:  # pragma: no cover - the pinned stack has it
        raise DotcomError("executorch is not installed: pip install executorch") from exc
    paths = [Path(p) for p in getattr(executorch, "__path__", [])]
    if getattr(executorch, "__file__", None):
        paths.insert(0, Path(executorch.__file__).parent)
    for p in paths:
        if (p / "share" / "cmake" / "executorch-config.cmake").exists():
            return p
    raise DotcomError("the installed executorch has no CMake package (share/cmake/executorch-config.cmake)")


def _tool(name: str) -> str | None:
    """A build tool from the venv's bin/ first (pip's cmake and ninja), then PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def _sources() -> list[Path]:
    return [RUNNER_SRC / "CMakeLists.txt", *sorted((RUNNER_SRC / "src").glob("*.[ch]*"))]


def _configured_prefix() -> str | None:
    cache = BUILD_DIR / "CMakeCache.txt"
    if not cache.exists():
        return None
    for line in cache.read_text(errors="replace").splitlines():
        if line.startswith("CMAKE_PREFIX_PATH:"):
            return line.split("=", 1)[1]
    return None


def _up_to_date(binary: Path, prefix: Path) -> bool:
    if not binary.exists() or _configured_prefix() != str(prefix):
        return False
    newest = max(p.stat().st_mtime for p in [*_sources(), prefix / "lib" / "libexecutorch.so"] if p.exists())
    return binary.stat().st_mtime >= newest


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Serialise builds: pytest workers and a `bench` may ask for the runner at once."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / ".build.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _first_error(log: str) -> str:
    for line in log.splitlines():
        low = line.lower()
        if "error" in low and "warning" not in low and line.strip():
            return line.strip()
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def _run_logged(cmd: list[str], log_path: Path, what: str) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    log_path.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        log = proc.stdout + proc.stderr
        if "CMAKE_CXX_COMPILER" in log or "No CMAKE_CXX_COMPILER" in log:
            raise DotcomError("no C++ compiler found: install g++ or clang (e.g. apt-get install g++)")
        raise DotcomError(f"{what} failed: {_first_error(log)} (full log: {log_path})")


def build_runner(force: bool = False) -> Path:
    """Configure and build ``runner/`` with Ninja; returns the binary's path.

    Reuses the existing binary when it is newer than every source and was built
    against the executorch that is installed now; ``force`` rebuilds from scratch.
    """
    prefix = executorch_prefix()
    binary = BUILD_DIR / BINARY_NAME
    if not force and _up_to_date(binary, prefix):
        return binary
    cmake, ninja = _tool("cmake"), _tool("ninja")
    if cmake is None:
        raise DotcomError("cmake not found: pip install 'cmake>=3.28' (or make install)")
    if ninja is None:
        raise DotcomError("ninja not found: pip install ninja (or make install)")
    if not (os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        raise DotcomError("no C++ compiler found: install g++ or clang (e.g. apt-get install g++)")
    with _build_lock():
        if force and BUILD_DIR.exists():
            for child in BUILD_DIR.iterdir():
                if child.name != ".build.lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        if force or _configured_prefix() != str(prefix):
            _run_logged(
                [cmake, "-S", str(RUNNER_SRC), "-B", str(BUILD_DIR), "-G", "Ninja",
                 f"-DCMAKE_MAKE_PROGRAM={ninja}", f"-DCMAKE_PREFIX_PATH={prefix}",
                 "-DCMAKE_BUILD_TYPE=Release"],
                BUILD_DIR / "configure.log", "configuring the native runner",
            )
        _run_logged([cmake, "--build", str(BUILD_DIR)], BUILD_DIR / "build.log", "building the native runner")
    if not binary.exists():
        raise DotcomError(f"the native runner build produced no {binary}")
    return binary


def _load_manifest(pte: Path) -> dict[str, Any] | None:
    path = pte.with_suffix(".json")
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == "dotcom-mobile/manifest" else None


def _enrich(report: dict[str, Any], pte: Path) -> dict[str, Any]:
    """Adds what the binary cannot know to its report, so native rows sit beside Python ones.

    The binary sees bytes; the manifest beside the artifact and the model registry know
    the model, task, params/MACs (for GMAC/s), delegation and the host's CPU kind
    (the binary does not parse cpu flags; it runs here). The report room's
    ``artifact_info``/``delegation_from_pte`` build these for every runner; without
    that module the manifest alone is used.
    """
    manifest = _load_manifest(pte)
    native_art = report["artifact"]
    try:
        from dotcom_mobile.report.host import cpu_device_fields as host_cpu
        from dotcom_mobile.report.latency import artifact_info, delegation_from_pte
    except ImportError:
        artifact_info = delegation_from_pte = host_cpu = None
    if artifact_info is not None:
        art = artifact_info(pte, manifest=manifest, input_shape=native_art.get("input_shape"))
        for key, value in native_art.items():  # keep the binary's answer where the name said nothing
            if art.get(key) in (None, "unknown") and value not in (None, "unknown"):
                art[key] = value
        report["artifact"] = art
    elif manifest:
        for key in _MANIFEST_ARTIFACT_FIELDS:
            if manifest.get(key) is not None:
                native_art[key] = manifest[key]
        shape = (manifest.get("input") or {}).get("shape")
        if shape:
            native_art["input_shape"] = list(shape)
    if report.get("delegation") is None:
        delegation = (manifest or {}).get("delegation")
        if delegation is None and delegation_from_pte is not None and report.get("status") == "ok":
            delegation = delegation_from_pte(pte)
        report["delegation"] = delegation
    device = report.get("device")
    if host_cpu is not None and isinstance(device, dict) and "cpu_kind" not in device:
        device.update(host_cpu())  # the binary ran on this host: its int8 instruction sets are this host's
    return report


def validate(report: dict[str, Any]) -> None:
    """Schema check; the report room's validator when present, else the schema directly."""
    try:
        from dotcom_mobile.report.latency import validate_report
    except ImportError:
        validate_report = None
    if validate_report is not None:
        validate_report(report)
        return
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    try:
        jsonschema.validate(report, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<root>"
        raise DotcomError(f"native runner report is invalid at {where}: {exc.message}") from None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, path)


def _error_line(stderr: str, returncode: int) -> str:
    prefix = "dotcom_runner: error: "
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith(prefix):
            return ln[len(prefix):]
    for ln in reversed(lines):
        if ln.startswith("dotcom_runner: "):
            return ln[len("dotcom_runner: "):]
    return lines[-1] if lines else f"native runner exited with status {returncode}"


def run_native(
    pte: str | os.PathLike[str],
    *,
    threads: int,
    warmup: int,
    iters: int,
    repeats: int,
    out_json: str | os.PathLike[str],
    verify: bool = False,
    dump_outputs: str | os.PathLike[str] | None = None,
    input: str | None = None,
    input_file: str | os.PathLike[str] | None = None,
    seed: int = 0,
    timeout: float | None = None,
    etdump: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Times ``pte`` (.pte or .bpte) with the native runner; returns the report dict.

    The report is also written to ``out_json`` (validated, with model/task/delegation
    from the manifest beside the artifact when there is one). ``input`` is random,
    zeros or bundled (default: bundled for a .bpte, else random); ``input_file`` holds
    the raw bytes of every tensor input. With ``etdump`` every run (warm-up included) is
    profiled and the ETDump written there: per-operator times for ``perf/layer_speed.py``,
    latencies that include the profiler's cost. A file the runtime rejects, or bundled outputs
    that do not match with ``verify``, raise :class:`DotcomError` with the runner's
    one-line message; the error report is left in ``out_json`` for the table.
    """
    extra = ["--verify"] if verify else []
    if dump_outputs is not None:
        extra += ["--dump-outputs", str(dump_outputs)]
    if input_file is not None:
        extra += ["--input-file", str(input_file)]
    elif input is not None:
        extra += ["--input", input]
    return run_native_in_turn([pte], threads=threads, warmup=warmup, iters=iters, repeats=repeats,
                              out_jsons=[out_json], etdumps=None if etdump is None else [etdump], seed=seed,
                              timeout=timeout, extra=extra)[0]


def run_native_in_turn(
    ptes: Sequence[str | os.PathLike[str]],
    *,
    threads: int,
    warmup: int,
    iters: int,
    repeats: int,
    out_jsons: Sequence[str | os.PathLike[str]],
    etdumps: Sequence[str | os.PathLike[str]] | None = None,
    seed: int = 0,
    timeout: float | None = None,
    extra: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Times several programs in one native runner process, in turn; one report each.

    Every warm-up and timed call runs each program once, in order, so a slow spell of a
    shared host lands on all of them and their ratio holds (the native twin of
    :mod:`dotcom_mobile.bench.in_turn`). Report ``i`` goes to ``out_jsons[i]`` (and the
    ETDump of program ``i`` to ``etdumps[i]``); each names the others in
    ``protocol.in_turn_with``. A failure raises the runner's one line, which names the
    program that failed; every report is then an error report.
    """
    ptes, out_jsons = [Path(p) for p in ptes], [Path(o) for o in out_jsons]
    if not ptes or len(out_jsons) != len(ptes) or (etdumps is not None and len(etdumps) != len(ptes)):
        raise ValueError("run_native_in_turn: one out_json (and etdump, if any) per program")
    for pte in ptes:
        if not pte.exists():
            raise DotcomError(f"artifact not found: {pte}")
    binary = build_runner()
    cmd = [str(binary), "--threads", str(threads), "--warmup", str(warmup), "--iters", str(iters),
           "--repeats", str(repeats), "--seed", str(seed), *extra]
    for i, (pte, out_json) in enumerate(zip(ptes, out_jsons)):
        out_json.parent.mkdir(parents=True, exist_ok=True)
        cmd += ["--model", str(pte), "--out", str(out_json)]
        if etdumps is not None:
            cmd += ["--etdump", str(etdumps[i])]
    names = ", ".join(p.name for p in ptes)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DotcomError(f"native runner timed out after {timeout:.0f} s on {names}") from None
    reports: list[dict[str, Any] | None] = []
    for pte, out_json in zip(ptes, out_jsons):
        report = None
        if out_json.exists():
            try:
                report = json.loads(out_json.read_text())
            except json.JSONDecodeError:
                report = None
        if report is not None:
            report = _enrich(report, pte)
            _write_json(out_json, report)
        reports.append(report)
    if proc.returncode < 0:  # killed by a signal its own handler did not catch (SIGKILL, SIGABRT in a backend)
        from dotcom_mobile.export.pte import crash_line

        raise DotcomError(crash_line(ptes[0] if len(ptes) == 1 else names, proc.returncode,
                                     runtime="the native ExecuTorch runner"))
    if proc.returncode != 0:
        line = _error_line(proc.stderr, proc.returncode)
        raise DotcomError(line if any(str(p) in line for p in ptes) else f"{ptes[0]}: {line}")
    for pte, report in zip(ptes, reports):
        if report is None:
            raise DotcomError(f"native runner wrote no report for {pte.name}")
        validate(report)
    return reports  # type: ignore[return-value]


def compare_with_python(
    pte: str | os.PathLike[str],
    threads: tuple[int, ...] = (1, 2),
    *,
    warmup: int = 10,
    iters: int = 30,
    rounds: int = 3,
) -> list[dict[str, Any]]:
    """p50 of the native and the Python runner on one .pte, interleaved round by round.

    Interleaving (native, python, native, ...) spreads machine noise over both runners
    instead of letting a busy minute land on one of them; the median of the per-round
    p50s is compared. Returns one row per thread count with ``ratio`` = native / python.
    """
    from dotcom_mobile.bench.runners import run_python

    pte = Path(pte)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for t in threads:
            native_p50, python_p50 = [], []
            for r in range(rounds):
                rep = run_native(pte, threads=t, warmup=warmup, iters=iters, repeats=1,
                                 out_json=Path(tmp) / f"n{t}_{r}.json")
                native_p50.append(rep["results"]["p50_ms"])
                rep = run_python(pte, threads=t, warmup=warmup, iters=iters, repeats=1)
                python_p50.append(rep["results"]["p50_ms"])
            n, p = sorted(native_p50)[rounds // 2], sorted(python_p50)[rounds // 2]
            rows.append({"threads": t, "native_p50_ms": n, "python_p50_ms": p, "ratio": n / p,
                         "native_rounds": native_p50, "python_rounds": python_p50})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dotcom_mobile.bench.native",
                                     description="Build or run the native ExecuTorch benchmark runner.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="configure and build runner/ into runner/build")
    b.add_argument("--force", action="store_true", help="rebuild from scratch")
    r = sub.add_parser("run", help="time one .pte/.bpte and write a latency report")
    r.add_argument("model")
    r.add_argument("--threads", type=int, default=0)
    r.add_argument("--warmup", type=int, default=10)
    r.add_argument("--iters", type=int, default=50)
    r.add_argument("--repeats", type=int, default=3)
    r.add_argument("--out", default=None, help="report path [<model stem>.native.json]")
    r.add_argument("--verify", action="store_true")
    c = sub.add_parser("compare", help="native vs Python runner p50 on one .pte, interleaved")
    c.add_argument("model")
    c.add_argument("--threads", default="1,2", help="comma-separated thread counts [1,2]")
    c.add_argument("--warmup", type=int, default=10)
    c.add_argument("--iters", type=int, default=30)
    c.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "build":
            print(build_runner(force=args.force))
        elif args.cmd == "compare":
            threads = tuple(int(t) for t in args.threads.split(","))
            rows = compare_with_python(args.model, threads, warmup=args.warmup, iters=args.iters,
                                       rounds=args.rounds)
            print(f"{'threads':>7} {'native p50':>11} {'python p50':>11} {'native/python':>14}")
            for row in rows:
                print(f"{row['threads']:>7} {row['native_p50_ms']:>8.3f} ms {row['python_p50_ms']:>8.3f} ms "
                      f"{row['ratio']:>14.3f}")
        else:
            out = args.out or str(Path(args.model).with_suffix("")) + ".native.json"
            rep = run_native(args.model, threads=args.threads, warmup=args.warmup, iters=args.iters,
                             repeats=args.repeats, out_json=out, verify=args.verify)
            res = rep["results"]
            print(f"{rep['artifact']['name']}: p50 {res['p50_ms']:.3f} ms, p90 {res['p90_ms']:.3f} ms, "
                  f"load {res['load_ms']:.1f} ms -> {out}")
    except DotcomError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
