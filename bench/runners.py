"""In-process runners: ExecuTorch's Python runtime, and the two baselines users would pick.

All three follow one protocol so their numbers can share a table:

1. load (timed: ``load_ms``), 2. the first call (timed: ``first_inference_ms``; it
counts as one of the ``warmup`` calls), 3. the remaining warm-up calls, 4. ``repeats``
blocks of ``iterations`` timed calls with ``time.perf_counter_ns`` around each call
only (input made once, outputs not copied). Every sample goes into the report.

* :func:`run_python`: ``executorch.runtime``. XNNPACK's thread pool is global and is
  sized when a method is loaded, so it is reset *before* ``load_method``.
* :func:`run_eager`: the same network in PyTorch (``torch.set_num_threads``), from the
  artifact's manifest (model name, classes, input) plus ``--checkpoint``, or a
  quantized ``.pt2`` from ``dotcom-mobile quantize``.
* :func:`run_onnxruntime`: ``torch.onnx`` export of that network, fp32 or static int8
  QDQ made by ``onnxruntime.quantization.quantize_static`` (what a user would pick
  instead of ExecuTorch on a desktop or an Android NNAPI-less phone).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from dotcom_mobile.export.pte import check_program, native_log, program_bytes, runtime_call
from dotcom_mobile.model.errors import DotcomError
from dotcom_mobile.report.host import current_rss_bytes, peak_memory_bytes, reset_peak_memory
from dotcom_mobile.report.latency import (artifact_info, delegation_from_pte, find_manifest, make_report,
                                          mark_in_turn, package_version)

DEFAULT_INPUT = (1, 3, 256, 256)


# --------------------------------------------------------------------------- protocol


@dataclass
class Timing:
    load_ms: float
    first_inference_ms: float
    latencies_ms: list[float]
    peak_memory_bytes: int | None


def _time_calls(call: Callable[[], Any], warmup: int, iters: int, repeats: int, cooldown_s: float = 0.0) -> tuple[float, list[float]]:
    """Run the warm-up and timed protocol; returns (first call ms, samples)."""
    return _time_calls_in_turn([call], warmup, iters, repeats, cooldown_s)[0]


def _time_calls_in_turn(calls: Sequence[Callable[[], Any]], warmup: int, iters: int, repeats: int,
                        cooldown_s: float = 0.0) -> list[tuple[float, list[float]]]:
    """The protocol for several programs at once: every step calls each of them once, in order.

    A slow spell of the machine then lands on all of them alike, so their ratios hold
    (``bench --in-turn``). Returns (first call ms, samples) per call.
    """
    def timed(call: Callable[[], Any]) -> float:
        t0 = time.perf_counter_ns()
        call()
        return (time.perf_counter_ns() - t0) / 1e6

    first = [timed(call) for call in calls]
    for _ in range(max(0, warmup - 1)):
        for call in calls:
            call()
    samples: list[list[float]] = [[] for _ in calls]
    for r in range(repeats):
        if r and cooldown_s:
            time.sleep(cooldown_s)
        for _ in range(iters):
            for call, out in zip(calls, samples):
                out.append(timed(call))
    return list(zip(first, samples))


def _check_protocol(threads: int, warmup: int, iters: int, repeats: int) -> None:
    if threads < 0 or warmup < 0 or iters < 1 or repeats < 1:
        raise DotcomError(f"bad protocol: threads {threads}, warmup {warmup}, iters {iters}, repeats {repeats} "
                          "(need threads >= 0, warmup >= 0, iters >= 1, repeats >= 1)")


def make_input(shape: Sequence[int], kind: str = "random", dtype: Any = None):
    """The benchmark input: seeded N(0, 1) (``random``) or ``zeros``, so runs are comparable."""
    import torch

    dtype = dtype or torch.float32
    if kind == "zeros":
        return torch.zeros(*shape, dtype=dtype)
    if kind != "random":
        raise DotcomError(f"input kind {kind!r} is not supported by this runner (random, zeros)")
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(dtype)


# --------------------------------------------------------------------------- ExecuTorch


def run_python(
    pte_path: str | Path,
    threads: int = 0,
    warmup: int = 10,
    iters: int = 50,
    repeats: int = 3,
    *,
    input_kind: str = "random",
    cooldown_s: float = 0.0,
    manifest: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Benchmark a ``.pte`` with ExecuTorch's Python runtime; returns a latency report.

    ``threads`` 0 keeps the runtime's default pool. A missing, truncated or corrupt
    file raises :class:`DotcomError` with one line naming the file and the loader's
    reason.
    """
    return run_python_in_turn([pte_path], threads, warmup, iters, repeats, input_kind=input_kind,
                              cooldown_s=cooldown_s, manifests=[manifest])[0]


def run_python_in_turn(
    pte_paths: Sequence[str | Path],
    threads: int = 0,
    warmup: int = 10,
    iters: int = 50,
    repeats: int = 3,
    *,
    input_kind: str = "random",
    cooldown_s: float = 0.0,
    manifests: Sequence[dict[str, Any] | None] | None = None,
) -> list[dict[str, Any]]:
    """:func:`run_python` of several ``.pte`` loaded at once and called in turn; a report each.

    Every warm-up and timed step calls each program once, in order
    (:func:`_time_calls_in_turn`); with more than one program each report names the
    others in ``protocol.in_turn_with``, and its peak memory holds all of them.
    """
    _check_protocol(threads, warmup, iters, repeats)
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    from executorch.runtime import Runtime

    paths = [Path(p) for p in pte_paths]
    infos = [check_program(path, runs_here=True) for path in paths]  # before the runtime sees the bytes
    manifests = [m if m is not None else find_manifest(path) for m, path in zip(manifests or [None] * len(paths), paths)]
    with native_log():
        if threads > 0:
            _unsafe_reset_threadpool(threads)  # must precede load_method: the pool is bound there
    reset_peak_memory()
    programs, calls, loaded = [], [], []  # programs kept alive; per program (input shape, load ms, RSS before)
    for path, info in zip(paths, infos):
        before = current_rss_bytes()
        t0 = time.perf_counter_ns()
        with runtime_call() as loading:
            program = Runtime.get().load_program(program_bytes(path) if info.bundled else path)
            method = program.load_method("forward")
        if loading.error is not None:
            raise DotcomError(f"{path}: not a loadable ExecuTorch program ({loading.reason or loading.error})")
        load_ms = (time.perf_counter_ns() - t0) / 1e6
        if method is None:
            raise DotcomError(f"{path}: the program has no 'forward' method")
        meta = method.metadata
        if meta.num_inputs() != 1:
            raise DotcomError(f"{path}: forward takes {meta.num_inputs()} inputs; the benchmark feeds one image tensor")
        shape = list(meta.input_tensor_meta(0).sizes())
        programs.append(program)
        calls.append(lambda m=method, x=[make_input(shape, input_kind)]: m.execute(x))
        loaded.append((shape, load_ms, before))

    with runtime_call() as running:
        timings = _time_calls_in_turn(calls, warmup, iters, repeats, cooldown_s)
    if running.error is not None:
        names = paths[0] if len(paths) == 1 else ", ".join(str(p) for p in paths)
        raise DotcomError(f"{names}: execution failed ({running.reason or running.error})")
    peak = peak_memory_bytes()
    reports = []
    for path, manifest, (shape, load_ms, before), (first_ms, samples) in zip(paths, manifests, loaded, timings):
        delegation = (manifest or {}).get("delegation") or delegation_from_pte(path)
        reports.append(make_report(
            artifact=artifact_info(path, manifest=manifest, input_shape=shape),
            runner="python", threads=threads, warmup=warmup, iterations=iters, repeats=repeats,
            latencies_ms=samples, load_ms=load_ms, first_inference_ms=first_ms, peak_memory_bytes=peak,
            memory_scope="in_process", memory_before_load_bytes=before, delegation=delegation,
            input_kind=input_kind, clock="perf_counter_ns", cooldown_s=cooldown_s or None,
            runtime_version=package_version("executorch"),
        ))
    return mark_in_turn(reports) if len(reports) > 1 else reports


# --------------------------------------------------------------------------- baselines


@dataclass
class ModelSpec:
    """What a baseline needs to rebuild the network an artifact was made from."""

    model: str
    num_classes: int
    input_shape: tuple[int, ...]
    quantization: str = "fp32"
    checkpoint: str | None = None
    pt2: str | None = None  # a quantized program from `dotcom-mobile quantize`

    @property
    def key(self) -> tuple:
        return (self.model, self.num_classes, self.input_shape, self.quantization, self.checkpoint, self.pt2)


def _load_pt2(path: str | Path, extra_files: dict[str, str] | None = None):
    """``torch.export.load`` of a quantized program.

    Its graph holds ``quantized_decomposed`` ops, which exist only once torchao's PT2E
    module is imported; a fresh process (an isolated benchmark) has not imported it.
    """
    import torch
    import torchao.quantization.pt2e  # noqa: F401 - registers quantized_decomposed ops

    return torch.export.load(str(path), extra_files=extra_files)


def _pt2_meta(path: Path) -> dict[str, Any]:
    """A quantize .pt2's dotcom_meta.json, through export's loader: one-line errors, torch's traceback log muted."""
    from dotcom_mobile.export.api import load_quantized

    return load_quantized(path)[1]


def manifest_beside(artifact: str | Path) -> dict[str, Any] | None:
    """The manifest beside ``artifact``, checked against export's schema; None when there is none.

    ``<stem>.json`` is the manifest's name by the export convention (reports are
    ``<stem>__<runner>__t<N>.json``), so a file there that is not a valid manifest (broken
    JSON, another kind of JSON, a failing field) is one line naming it, not a silent
    fallback to guessing the model from the artifact's name.
    """
    path = Path(artifact).with_suffix(".json")
    if not path.is_file():
        return None
    from dotcom_mobile.export.manifest import validate_manifest

    return validate_manifest(path)


def spec_for(artifact: str | Path, checkpoint: str | Path | None = None) -> ModelSpec:
    """The network behind ``artifact`` (a .pte/.bpte with its manifest, a .pt2, or a model name)."""
    from dotcom_mobile.model import resolve_model_name

    p = Path(artifact)
    ckpt = str(checkpoint) if checkpoint else None
    if p.suffix == ".pt2":
        meta = _pt2_meta(p)
        if not meta.get("model"):
            raise DotcomError(f"{p}: its dotcom_meta.json names no model (was it written by dotcom-mobile quantize?)")
        size = list(meta["preprocess"].input_size) if meta.get("preprocess") else list(DEFAULT_INPUT[1:])
        return ModelSpec(meta["model"], int(meta.get("num_classes") or 1000), (1, *map(int, size)),
                         str(meta.get("quantization") or "q8"), ckpt, str(p))
    if p.suffix in (".pte", ".bpte"):
        manifest = manifest_beside(p)
        if manifest is None:
            from dotcom_mobile.report.latency import parse_artifact_name

            parsed = parse_artifact_name(p.stem)
            if not parsed["model"]:
                raise DotcomError(f"{p}: no manifest beside it ({p.with_suffix('.json').name}) and the name does not "
                                  "say which model it is; a baseline needs the model")
            return ModelSpec(resolve_model_name(parsed["model"]), 1000, _pte_input_shape(p), parsed["quantization"] or "fp32", ckpt)
        return ModelSpec(resolve_model_name(manifest["model"]), int(manifest["num_classes"]),
                         tuple(int(s) for s in manifest["input"]["shape"]), manifest.get("quantization", "fp32"), ckpt)
    return ModelSpec(resolve_model_name(str(artifact)), 1000, DEFAULT_INPUT, "fp32", ckpt)


def _pte_input_shape(path: Path) -> tuple[int, ...]:
    """Input shape recorded in the program (no method is loaded, so this is cheap)."""
    from executorch.runtime import Runtime

    with native_log():
        try:
            return tuple(Runtime.get().load_program(path).metadata("forward").input_tensor_meta(0).sizes())
        except Exception:  # noqa: BLE001 - unreadable program: the runner reports it; fall back
            return DEFAULT_INPUT


def build_eager(spec: ModelSpec):
    """The eval-mode PyTorch module for ``spec`` (a .pt2 program or create_model + checkpoint)."""
    from dotcom_mobile.model import create_model

    if spec.pt2:
        return _load_pt2(spec.pt2).module()
    kwargs: dict[str, Any] = {"checkpoint": spec.checkpoint}
    if not spec.checkpoint:
        kwargs["num_classes"] = spec.num_classes
    return create_model(spec.model, **kwargs)


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _baseline_artifact(spec: ModelSpec, backend: str, file: Path | None = None) -> dict[str, Any]:
    """A report ``artifact`` for a baseline: synthetic name ``<model>_<backend>_<quant>``."""
    from dotcom_mobile.report.latency import model_cost

    params, macs = model_cost(spec.model, spec.input_shape, spec.num_classes)
    name = f"{spec.model}_{backend}_{spec.quantization}"
    src = file if file is not None else (Path(spec.pt2) if spec.pt2 else None)
    info = artifact_info(src, input_shape=spec.input_shape, with_cost=False) if src is not None and src.is_file() else {
        "name": name, "path": None, "sha256": None, "size_bytes": None}
    info.update(name=name if file is None else file.name, backend=backend, quantization=spec.quantization,
                model=spec.model, task="classify", input_shape=list(spec.input_shape), params=params, macs=macs)
    return info


def run_eager(
    spec: ModelSpec,
    threads: int = 0,
    warmup: int = 10,
    iters: int = 50,
    repeats: int = 3,
    *,
    input_kind: str = "random",
    cooldown_s: float = 0.0,
) -> dict[str, Any]:
    """Benchmark the network in PyTorch eager mode (``torch.inference_mode``)."""
    import torch

    _check_protocol(threads, warmup, iters, repeats)
    with _torch_threads(threads):
        reset_peak_memory()
        before = current_rss_bytes()
        t0 = time.perf_counter_ns()
        model = build_eager(spec)
        load_ms = (time.perf_counter_ns() - t0) / 1e6
        x = make_input(spec.input_shape, input_kind)
        with torch.inference_mode():
            first_ms, samples = _time_calls(lambda: model(x), warmup, iters, repeats, cooldown_s)
        peak = peak_memory_bytes()
    return make_report(
        artifact=_baseline_artifact(spec, "eager"), runner="eager", threads=threads, warmup=warmup,
        iterations=iters, repeats=repeats, latencies_ms=samples, load_ms=load_ms, first_inference_ms=first_ms,
        peak_memory_bytes=peak, memory_scope="in_process", memory_before_load_bytes=before, delegation=None,
        input_kind=input_kind, cooldown_s=cooldown_s or None, runtime_version=torch.__version__, executorch_version=None,
    )


class _RandomCalibration:
    """ONNX Runtime CalibrationDataReader over seeded random inputs.

    Latency does not depend on the scales calibration picks, so random tensors are
    enough for a speed baseline (they would not be for accuracy).
    """

    def __init__(self, input_name: str, shape: Sequence[int], count: int = 8) -> None:
        import numpy as np

        rng = np.random.default_rng(0)
        self._items = iter([{input_name: rng.standard_normal(shape).astype("float32")} for _ in range(count)])

    def get_next(self) -> dict[str, Any] | None:
        return next(self._items, None)


def export_onnx(spec: ModelSpec, out_dir: str | Path) -> Path:
    """``<model>_onnxruntime_<quant>.onnx`` in ``out_dir`` (cached: reused when present).

    fp32: ``torch.onnx.export`` of the eager network with Co-Bias 2 folded (the same
    exact rewrite ExecuTorch gets). q8: static QDQ int8 (per-channel weights) by
    ``onnxruntime.quantization.quantize_static`` on that fp32 file.
    """
    import torch

    from dotcom_mobile.model.deploy import to_deploy

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shape_tag = "x".join(map(str, spec.input_shape[-2:]))
    fp32 = out / f"{spec.model}_onnxruntime_fp32.onnx"
    tag_file = out / f".{spec.model}_onnxruntime.shape"
    if fp32.exists() and (not tag_file.exists() or tag_file.read_text() != shape_tag):
        fp32.unlink()  # made for another input size
        (out / f"{spec.model}_onnxruntime_q8.onnx").unlink(missing_ok=True)
    if not fp32.exists():
        model = to_deploy(build_eager(ModelSpec(spec.model, spec.num_classes, spec.input_shape, "fp32", spec.checkpoint)), "portable")
        x = make_input(spec.input_shape)
        tmp = out / f".{fp32.name}.tmp.onnx"
        try:
            with native_log(), contextlib.redirect_stdout(open(os.devnull, "w")):
                torch.onnx.export(model, (x,), str(tmp), input_names=["input"], output_names=["logits"],
                                  dynamo=True, external_data=False, optimize=True)
            os.replace(tmp, fp32)
        finally:
            tmp.unlink(missing_ok=True)
        tag_file.write_text(shape_tag)
    if spec.quantization == "fp32":
        return fp32
    q8 = out / f"{spec.model}_onnxruntime_q8.onnx"
    if not q8.exists():
        import logging

        from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

        tmp = out / f".{q8.name}.tmp.onnx"
        pre = out / f".{q8.name}.pre.onnx"
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # per-tensor chatter about LayerNorm weights; nothing actionable
        try:
            # ORT's recommended first step: shape inference + graph optimisation, so QDQ
            # pairs land where its int8 kernels can fuse them.
            try:
                quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
                source = pre
            except Exception:  # noqa: BLE001 - optional optimisation; quantize the plain file
                source = fp32
            quantize_static(str(source), str(tmp), _RandomCalibration("input", spec.input_shape),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
            os.replace(tmp, q8)
        finally:
            root.setLevel(level)
            tmp.unlink(missing_ok=True)
            pre.unlink(missing_ok=True)
    return q8


def run_onnxruntime(
    spec: ModelSpec,
    threads: int = 0,
    warmup: int = 10,
    iters: int = 50,
    repeats: int = 3,
    *,
    cache_dir: str | Path = ".",
    input_kind: str = "random",
    cooldown_s: float = 0.0,
) -> dict[str, Any]:
    """Benchmark the ONNX Runtime CPU baseline (fp32, or int8 QDQ when ``spec.quantization`` is q8)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise DotcomError("the ONNX Runtime baseline needs the onnx extra: pip install 'dotcom-mobile[onnx]'") from None
    _check_protocol(threads, warmup, iters, repeats)
    onnx_path = export_onnx(spec, cache_dir)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads  # 0: ORT's default (one per physical core)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    reset_peak_memory()
    before = current_rss_bytes()
    t0 = time.perf_counter_ns()
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    name = session.get_inputs()[0].name
    feed = {name: make_input(spec.input_shape, input_kind).numpy()}
    first_ms, samples = _time_calls(lambda: session.run(None, feed), warmup, iters, repeats, cooldown_s)
    peak = peak_memory_bytes()
    return make_report(
        artifact=_baseline_artifact(spec, "onnxruntime", onnx_path), runner="onnxruntime", threads=threads,
        warmup=warmup, iterations=iters, repeats=repeats, latencies_ms=samples, load_ms=load_ms,
        first_inference_ms=first_ms, peak_memory_bytes=peak, memory_scope="in_process",
        memory_before_load_bytes=before, delegation=None, input_kind=input_kind,
        cooldown_s=cooldown_s or None, runtime_version=ort.__version__, executorch_version=None,
    )
