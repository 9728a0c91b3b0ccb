"""Plan and run a set of benchmarks: artifacts x thread counts x runners, plus baselines.

Shared by ``dotcom-mobile bench``, ``dotcom-mobile demo`` and ``perf/perf_targets.py``
so all three follow the same protocol and write the same files:
``<out>/<artifact-stem>__<runner>__t<threads>.json``.

Every input is checked while planning, before anything runs or is written: a file
that is not a program (a truncated download, a .pt2 named .pte, a checkpoint of
another model for the baselines) stops the command with one line and leaves the
report folder as it was. A run that fails later (the runtime rejects a method, or
crashes on a damaged delegate payload in its child process) does not stop the
others: it is written as a ``status: error`` report and listed under the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from dotcom_mobile.model.errors import DotcomError

from dotcom_mobile.report.latency import artifact_info, make_report, mark_in_turn, report_filename, write_json_atomic


@dataclass(frozen=True)
class Protocol:
    warmup: int = 10
    iters: int = 50
    repeats: int = 3
    input_kind: str = "random"
    cooldown_s: float = 0.0
    # Python, eager and ONNX Runtime runs each in a fresh process (bench/isolate.py), so
    # their peak memory is theirs and not what the calling process held before.
    isolate: bool = True


@dataclass
class Job:
    """One measurement: a runner on an artifact (or a baseline model, or artifacts in turn) at a thread count.

    ``run`` returns one report, or one per artifact of ``in_turn`` (timed in one process,
    a call of each in turn).
    """

    label: str
    runner: str
    threads: int
    run: Callable[[], dict[str, Any] | list[dict[str, Any]]]
    artifact: Path | None = None
    in_turn: tuple[Path, ...] = ()


@dataclass
class Outcome:
    reports: list[dict[str, Any]] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_threads(text: str) -> list[int]:
    """``"1,2"`` -> ``[1, 2]``; 0 means the runtime default."""
    try:
        values = [int(t) for t in str(text).replace(" ", "").split(",") if t != ""]
    except ValueError:
        raise DotcomError(f"--threads must be a comma-separated list of integers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise DotcomError(f"--threads must list thread counts >= 0, got {text!r}")
    return list(dict.fromkeys(values))


def plan(
    artifacts: Sequence[str | Path],
    *,
    runner: str = "python",
    threads: Sequence[int] = (1, 2),
    protocol: Protocol = Protocol(),
    baselines: Sequence[str] = (),
    checkpoint: str | Path | None = None,
    cache_dir: str | Path = ".",
    in_turn: bool = False,
) -> list[Job]:
    """The jobs for ``artifacts``: .pte/.bpte with ``runner``; .pt2 in PyTorch; baselines once per model.

    ``in_turn``: the .pte/.bpte artifacts are timed together, one job per thread count
    that loads them all into one process and calls each once per step (their ratios then
    share the machine's load); baselines stay jobs of their own.
    """
    from dotcom_mobile.export.pte import check_program, probe_load
    from dotcom_mobile.model.files import require_file
    from dotcom_mobile.model.introspect import checkpoint_facts

    from . import runners

    p = protocol
    weights = checkpoint_facts(checkpoint) if checkpoint is not None and baselines else None
    kw = dict(warmup=p.warmup, iters=p.iters, repeats=p.repeats, input_kind=p.input_kind, cooldown_s=p.cooldown_s)
    call = _isolated if p.isolate else _in_process
    jobs: list[Job] = []
    seen: set[tuple] = set()
    for a in artifacts:
        path = Path(a)
        if path.suffix not in (".pte", ".bpte", ".pt2"):
            raise DotcomError(f"{path}: not a benchmarkable artifact (.pte, .bpte, or a quantized .pt2)")
        if path.suffix == ".pt2":
            require_file(path)  # spec_for below loads it
        else:
            check_program(path, runs_here=True)  # before any runtime sees it (export/pte.py)
            runners.manifest_beside(path)  # one beside it that fails its schema: one line now, not per run
            if not p.isolate:
                probe_load(path)  # a crash would take this process with it
        if in_turn and path.suffix == ".pt2":
            raise DotcomError(f"{path}: --in-turn times .pte/.bpte programs together; bench the .pt2 on its own")
        pt2_spec = runners.spec_for(path, checkpoint) if path.suffix == ".pt2" else None
        for t in () if in_turn else threads:
            if pt2_spec is not None:
                spec = pt2_spec
                jobs.append(Job(f"{path.name} eager", "eager", t, lambda s=spec, t=t: call("run_eager", s, t, **kw), path))
            elif runner == "native":
                jobs.append(Job(f"{path.name} native", "native", t, lambda q=path, t=t: _run_native(q, t, p, cache_dir), path))
            else:
                jobs.append(Job(f"{path.name} python", "python", t, lambda q=path, t=t: call("run_python", q, t, **kw), path))
        for base in baselines:
            if path.suffix == ".pt2":
                continue  # the .pt2 already runs in PyTorch; ONNX baselines come from the .pte's model
            spec = runners.spec_for(path, checkpoint)
            if weights is not None:
                _check_weights(weights, spec, path)
            if base == "eager":
                spec.quantization = "fp32"  # eager int8 (.pt2) is only run when given explicitly
            key = (base, *spec.key)
            if key in seen:
                continue
            seen.add(key)
            for t in threads:
                if base == "eager":
                    jobs.append(Job(f"{spec.model} eager fp32", "eager", t, lambda s=spec, t=t: call("run_eager", s, t, **kw)))
                elif base == "onnxruntime":
                    jobs.append(Job(f"{spec.model} onnxruntime {spec.quantization}", "onnxruntime", t,
                                    lambda s=spec, t=t: export_then_run_onnxruntime(call, s, t, cache_dir, kw)))
                else:
                    raise DotcomError(f"unknown baseline {base!r} (eager, onnxruntime)")
    if in_turn:
        jobs[:0] = _in_turn_jobs([Path(a) for a in artifacts], runner, threads, p, call, kw, cache_dir)
    return jobs


def _in_turn_jobs(paths: list[Path], runner: str, threads: Sequence[int], p: Protocol, call: Callable[..., Any],
                  kw: dict[str, Any], cache_dir: str | Path) -> list[Job]:
    if len(paths) < 2 or len({path.resolve() for path in paths}) != len(paths):
        raise DotcomError("--in-turn needs two or more different .pte/.bpte files (their ratio is the point)")
    label = " + ".join(path.name for path in paths)
    group = tuple(paths)
    if runner == "native":
        return [Job(f"{label} native in turn", "native", t, lambda t=t: _run_native_in_turn(paths, t, p, cache_dir),
                    in_turn=group) for t in threads]
    return [Job(f"{label} python in turn", "python", t, lambda t=t: call("run_python_in_turn", paths, t, **kw),
                in_turn=group) for t in threads]


def _check_weights(weights: Any, spec: Any, artifact: Path) -> None:
    """--checkpoint must hold the network the artifact was made from (the baseline rebuilds it)."""
    if weights.model and weights.model != spec.model:
        raise DotcomError(f"{weights.source} holds {weights.model}, but {artifact.name} is {spec.model}: "
                          "the baselines need weights of the artifact's model")


def _in_process(func: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    from . import runners

    return getattr(runners, func)(*args, **kwargs)


def _isolated(func: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    from .isolate import run_isolated

    return run_isolated(func, *args, **kwargs)


def export_then_run_onnxruntime(call: Callable[..., dict[str, Any]], spec: Any, threads: int,
                                cache_dir: str | Path, kw: dict[str, Any]) -> dict[str, Any]:
    """Export (cached) here, so an isolated child only loads the .onnx and its peak is the session's."""
    from . import runners

    runners.export_onnx(spec, cache_dir)
    return call("run_onnxruntime", spec, threads, cache_dir=cache_dir, **kw)


def _run_native(pte: Path, threads: int, p: Protocol, out_dir: str | Path) -> dict[str, Any]:
    return _run_native_in_turn([pte], threads, p, out_dir)[0]


def _run_native_in_turn(ptes: list[Path], threads: int, p: Protocol, out_dir: str | Path) -> list[dict[str, Any]]:
    try:
        from . import native
    except ImportError:
        raise DotcomError("the native runner is not part of this build (bench/native.py is missing); use --runner python") from None
    tmps = [Path(out_dir) / f".{pte.stem}__native__t{threads}.json" for pte in ptes]
    try:
        return native.run_native_in_turn(ptes, threads=threads, warmup=p.warmup, iters=p.iters, repeats=p.repeats,
                                         out_jsons=tmps)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


def _error_report(job: Job, protocol: Protocol, message: str, artifact_path: Path | None = None) -> dict[str, Any]:
    path = artifact_path or job.artifact
    artifact = (artifact_info(path, with_cost=False) if path is not None and path.is_file()
                else {"name": path.name if path else job.label.replace(" ", "_"),
                      "backend": "unknown", "quantization": "unknown"})
    return make_report(artifact=artifact, runner=job.runner, threads=job.threads, warmup=protocol.warmup,
                       iterations=protocol.iters, repeats=protocol.repeats, latencies_ms=None,
                       input_kind=protocol.input_kind, error=message)


def execute(jobs: Sequence[Job], out_dir: str | Path, *, protocol: Protocol = Protocol(), progress: bool = True) -> Outcome:
    """Run ``jobs`` in order, writing each report into ``out_dir`` as soon as it exists."""
    from tqdm import tqdm

    out = Path(out_dir)
    outcome = Outcome()
    bar = tqdm(jobs, desc="bench", unit="run", disable=not progress, leave=False)
    for job in bar:
        bar.set_postfix_str(f"{job.label} t{job.threads}")
        try:
            result = job.run()
        except DotcomError as e:
            outcome.errors.append(str(e))
            result = (mark_in_turn([_error_report(job, protocol, str(e), a) for a in job.in_turn]) if job.in_turn
                      else _error_report(job, protocol, str(e)))
        for report in result if isinstance(result, list) else [result]:
            outcome.reports.append(report)
            outcome.paths.append(write_json_atomic(out / report_filename(report), report))
    bar.close()
    return outcome
