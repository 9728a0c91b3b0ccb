"""``quantize_model``: int8 PTQ or QAT of a DoTCoM model with torchao PT2E, plus a report.

The flow is the same for every backend; only the quantizer differs
(:mod:`dotcom_mobile.quantize.backends`)::

    create_model -> to_deploy(backend) -> torch.export (non-strict, model.tracing) -> .module()
      -> prepare_pt2e | prepare_qat_pt2e -> calibrate | fine-tune -> convert_pt2e
      -> the backend's finish (XNNPACK: biases onto the delegate's int32 grid)
      -> torch.export -> torch.export.save(<model>_<backend>_q8.pt2, extra_files=meta)

The *deployment* form is quantized, not the training form: export lowers the
deployment form, and quantizing anything else would calibrate ranges for ops that
never reach the phone (a separate Co-Bias add, a LayerNorm XNNPACK cannot run).

Every user mistake is found before the minute-long export starts, and nothing is
written until everything has succeeded: the files go to a temporary folder inside
``out_dir`` and are renamed into place at the end.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import click
import torch

from dotcom_mobile.model import DotcomError, PreprocessConfig, check_input_size, create_model, resolve_model_name
from dotcom_mobile.model.deploy import to_deploy

from . import numerics
from .backends import BACKENDS, as_xnnpack_runs_it, check_backend, make_quantizer
from .data import ImageSet, calibration_warnings, load_image_folder, load_labelled, load_train_folder, synthetic_inputs
from .recipes import DEFAULT_KEEP_FP32, DEFAULT_KEEP_FP32_LAYERS, EVAL_BATCH, default_skip, capture, export_batch1, ptq, qat

__all__ = ["QuantizeResult", "quantize_model", "load_quantized", "DEFAULT_KEEP_FP32", "DEFAULT_KEEP_FP32_LAYERS",
           "META_FILE"]

META_FILE = "dotcom_meta.json"
REPORT_JSON = "quant_report.json"
REPORT_MD = "quant_report.md"
PER_LAYER_IMAGES = 8  # images through the numeric debugger (it logs every node)


@dataclass
class QuantizeResult:
    """Where the quantized program and its reports were written, and the report itself."""

    pt2_path: Path
    report_json_path: Path
    report_md_path: Path
    report: dict[str, Any] = field(default_factory=dict)


SCHEMES = ("static", "dynamic", "auto")
# "auto": static int8 (the fast scheme) unless its output SQNR falls under this floor, then
# dynamic int8 (the accurate one) if that measures better (quantize/README.md). 30 dB is
# issue 16's target: where the trained models' top-1 stays within half a point of fp32.
AUTO_FLOOR_DB = 30.0

DYNAMIC_SCHEME = ("int8 dynamic: per-channel int8 weights; the activations into linear and dense conv layers "
                  "quantized at run time (one scale per token, pixel or image, as XNNPACK's kernels choose); "
                  "depthwise convs, SiLU, attention, LayerNorm, the classifier head and a conv that reads a "
                  "reshaped tensor (DoT blocks' conv_out; XNNPACK cannot run it dynamic) in fp32")


def _choice_reason(choice: dict[str, Any]) -> str:
    """One line: which scheme ``auto`` took and the figures it took it on."""
    static, dyn, floor = choice["static"]["sqnr_db"], choice["dynamic"], choice["floor_db"]
    if dyn is None:
        return f"static ({static:.1f} dB, at or above the {floor:g} dB floor)"
    if choice["chosen"] == "dynamic":
        return (f"dynamic ({dyn['sqnr_db']:.1f} dB; static gave {static:.1f} dB, under the {floor:g} dB floor; "
                "--scheme static for the faster one)")
    return f"static ({static:.1f} dB, under the {floor:g} dB floor, but dynamic measured no better: {dyn['sqnr_db']:.1f} dB)"


# --- helpers --------------------------------------------------------------------------

def _say(msg: str, enabled: bool) -> None:
    if enabled:
        click.echo(msg, err=True)


def _warn(msg: str) -> None:
    click.secho(f"WARNING: {msg}", fg="yellow", bold=True, err=True)


@torch.no_grad()
def _outputs(model, data: ImageSet, batch: int = EVAL_BATCH) -> torch.Tensor:
    return numerics.run_batched(model, data.inputs, batch)


def _evaluate(reference_logits: torch.Tensor, quantized, data: ImageSet) -> dict:
    """SQNR/top-1 of ``quantized`` as the backend runs it.

    Dynamic layers run with XNNPACK's scales (:func:`~.backends.as_xnnpack_runs_it`), one
    image at a time as the ``.pte`` does: each scale comes from the values it quantizes, so
    the rounding of a batched fp32 op moves them, and on the digits scans the batched
    evaluation flipped a second near-tie image that the ``.pte`` and this one do not.
    """
    device_view = as_xnnpack_runs_it(quantized)
    batch = 1 if device_view is not quantized else EVAL_BATCH
    return numerics.compare_outputs(reference_logits, _outputs(device_view, data, batch), data.labels)


def _layer_analysis(reference, quantized, data: ImageSet) -> list[numerics.LayerStat]:
    node_sqnr = numerics.per_node_sqnr(reference, quantized, data.inputs[:PER_LAYER_IMAGES])
    return numerics.per_layer_sqnr(reference, node_sqnr)


def _quantized_layers(model: torch.fx.GraphModule) -> int:
    """Count of int8 weight tensors in a converted graph (a sanity figure for the report)."""
    return sum(1 for n in model.graph.nodes if n.op == "call_function"
               and "dequantize_per_channel" in str(n.target))


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "torchao", "executorch", "coremltools", "dotcom-mobile"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def _schema_type_hints_cached() -> Iterator[None]:
    """``torch.export.load`` with each schema class's type hints resolved once.

    The deserializer rebuilds every node, argument and tensor description of the program
    as a schema dataclass and calls ``typing.get_type_hints`` on its class each time:
    57,000 calls for Tiny's int8 program, 60% of the 5 s load. The hints of a class do
    not change; the deserializer's module gets a ``typing`` whose ``get_type_hints`` is
    cached, for the duration of the load.
    """
    import types
    import typing

    from torch._export.serde import serialize

    cached = functools.lru_cache(maxsize=None)(lambda cls: typing.get_type_hints(cls, globalns=vars(serialize.schema)))

    def get_type_hints(obj: Any, globalns: Any = None, *args: Any, **kwargs: Any) -> Any:
        if globalns is vars(serialize.schema) and not args and not kwargs:
            return dict(cached(obj))
        return typing.get_type_hints(obj, globalns, *args, **kwargs)

    shim = types.ModuleType("typing")
    shim.__dict__.update(vars(typing))
    shim.get_type_hints = get_type_hints
    original, serialize.typing = serialize.typing, shim
    try:
        yield
    finally:
        serialize.typing = original


def load_quantized(path: str | Path) -> tuple[torch.export.ExportedProgram, dict[str, Any]]:
    """Load a ``.pt2`` written by :func:`quantize_model`: the program and its meta."""
    p = Path(path)
    if not p.is_file():
        raise DotcomError(f"quantized model {p}: no such file")
    # The program calls quantized_decomposed ops, which torchao registers on import:
    # without it the load fails with an opaque deserialization error.
    import logging
    import zipfile

    import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401

    if not zipfile.is_zipfile(p):
        raise DotcomError(f"{p} is not a torch.export .pt2 file (not a zip archive)")
    extra = {META_FILE: ""}
    log = logging.getLogger("torch.export")
    level, log.level = log.level, logging.CRITICAL  # torch logs a traceback before raising
    try:
        with _schema_type_hints_cached():
            ep = torch.export.load(p, extra_files=extra)
    except Exception as e:  # a truncated or foreign archive: torch raises many types
        raise DotcomError(f"{p} is not a torch.export .pt2 file ({type(e).__name__})") from None
    finally:
        log.setLevel(level)
    if not extra[META_FILE]:
        raise DotcomError(f"{p} has no {META_FILE}: it was not written by dotcom-mobile quantize")
    return ep, json.loads(extra[META_FILE])


# --- the command ----------------------------------------------------------------------

def quantize_model(
    model_name: str,
    *,
    checkpoint: str | Path | None = None,
    backend: str = "xnnpack",
    calib: str | Path | None = None,
    num_calib: int = 256,
    out_dir: str | Path = ".",
    dynamic: bool = False,
    scheme: str | None = None,
    min_sqnr_db: float = AUTO_FLOOR_DB,
    input_size: int | None = None,
    keep_fp32: int = 0,
    keep_fp32_modules: Sequence[str] = (),
    qat_epochs: int = 0,
    train_dir: str | Path | None = None,
    val_dir: str | Path | None = None,
    progress: bool = True,
    per_layer: bool = True,
    observer: str = "mse",
) -> QuantizeResult:
    """Quantize ``model_name`` to int8 for ``backend``; write the ``.pt2`` and reports.

    PTQ calibrates on ``calib`` (a folder of images, searched recursively; synthetic
    inputs with a warning when None). ``qat_epochs`` > 0 fine-tunes with fake
    quantization on ``train_dir`` (an ImageFolder) after PTQ. ``val_dir`` (ImageFolder)
    adds top-1/top-5 of fp32 and int8 to the report; without it, the output SQNR and
    agreement are measured on the calibration images. ``scheme`` is ``"static"`` (calibrated
    activation ranges; the default, and ``dynamic=False``), ``"dynamic"`` (run-time
    activation scales; ``dynamic=True``) or ``"auto"`` (static unless its SQNR is under
    ``min_sqnr_db`` and dynamic measures better; the command's default). ``keep_fp32`` leaves the N layers
    that lose the most SQNR in fp32; ``keep_fp32_modules`` does the same by module-path
    pattern (fnmatch, e.g. ``"stages.4.2.*"``). ``observer`` picks the XNNPACK activation ranges of PTQ
    (``"mse"``: least expected error, :mod:`.observers`; ``"histogram"``: PT2E's stock search). ``per_layer=False`` skips the numeric
    debugger pass (the slowest part of the report after calibration); the report then
    has no per-layer tables, and ``keep_fp32`` N, which ranks layers by it, is refused.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    # -- validate everything a user can get wrong, before the slow part --------------
    spec = check_backend(backend)
    name = resolve_model_name(model_name)
    if num_calib < 1:
        raise DotcomError("--num-calib must be at least 1")
    if keep_fp32 < 0:
        raise DotcomError("--keep-fp32 must be 0 or more")
    if qat_epochs < 0:
        raise DotcomError("--qat-epochs must be 0 or more")
    if keep_fp32 and not per_layer:
        raise DotcomError("--keep-fp32 N ranks layers by the per-layer analysis: it cannot be skipped with it")
    if qat_epochs and train_dir is None:
        raise DotcomError("--qat-epochs needs --train DIR (a labelled ImageFolder)")
    if train_dir is not None and not qat_epochs:
        raise DotcomError("--train is only used for QAT: add --qat-epochs N")
    scheme = scheme or ("dynamic" if dynamic else "static")
    if scheme not in SCHEMES:
        raise DotcomError(f"unknown scheme {scheme!r} (choose from {', '.join(SCHEMES)})")
    if dynamic and scheme != "dynamic":
        raise DotcomError(f"--dynamic contradicts --scheme {scheme}")
    # auto chooses between the two plain schemes; Core ML and QAT have no dynamic form, and
    # --keep-fp32 / --keep-fp32-modules tune the static one
    auto = scheme == "auto" and spec.supports_dynamic and not (qat_epochs or keep_fp32 or keep_fp32_modules)
    dynamic = scheme == "dynamic"
    make_quantizer(backend, dynamic=dynamic, qat=qat_epochs > 0, observer=observer)  # rejects bad combinations
    model = create_model(name, checkpoint=checkpoint)
    meta = model.dotcom_meta
    preprocess: PreprocessConfig = meta["preprocess"]
    if input_size is not None:
        preprocess = preprocess.with_size(int(input_size))
    check_input_size(preprocess.input_size[1], preprocess.input_size[2])
    if meta["task"] != "classify":
        raise DotcomError(f"quantize supports classification models for now, not {meta['task']}")

    warnings: list[str] = []
    if calib is not None:
        calib_set = load_image_folder(calib, preprocess, num_calib)
        warnings += calibration_warnings(calib_set, calib)
    else:
        calib_set = synthetic_inputs(preprocess, min(num_calib, 32))
        if not dynamic and not auto:
            warnings.append(
                "no --calib folder: calibrated on random synthetic inputs. int8 ranges will not match real "
                "images and accuracy can drop badly; pass --calib DIR with a few hundred representative images."
            )
        elif val_dir is None:  # dynamic scales need no calibration, but the report needs images to measure on
            warnings.append("no --calib or --val folder: the report's SQNR is measured on random synthetic inputs; "
                            "pass --val DIR to measure it on real images.")
    val_set = load_labelled(val_dir, preprocess, meta["class_names"]) if val_dir is not None else None
    loader = load_train_folder(Path(train_dir), preprocess, meta["class_names"], 32) if qat_epochs else None
    for w in warnings:
        _warn(w)
    eval_set = val_set if val_set is not None else calib_set

    # -- fp32 reference: the deployment form, exported --------------------------------
    t = time.perf_counter()
    deploy = to_deploy(model, backend)
    reference = capture(deploy, preprocess.input_size)
    timings["export_fp32_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ref_logits = _outputs(reference, eval_set)
    timings["evaluate_s"] = time.perf_counter() - t
    _say(f"exported the fp32 deployment form in {timings['export_fp32_s']:.0f} s", progress)

    default_types = tuple(DEFAULT_KEEP_FP32.get(backend, ()))
    default_layers = tuple(DEFAULT_KEEP_FP32_LAYERS.get(backend, ()))
    user_patterns = tuple(keep_fp32_modules)
    if user_patterns and not any(numerics.matches_any(n, user_patterns) for n in reference.graph.nodes):
        example = next((numerics.layer_of(n) for n in reference.graph.nodes if "transformer" in numerics.layer_of(n)), "")
        raise DotcomError(
            f"--keep-fp32-modules {' '.join(user_patterns)} matches no module of {name} "
            f"(module paths look like {example or 'stages.4.2.conv_in'}; patterns are fnmatch-style)"
        )

    def quantizer(patterns: Sequence[str], layers: Sequence[str] = (), is_qat: bool = False):
        skip = default_skip(backend, patterns, layers)
        return make_quantizer(backend, dynamic=dynamic, qat=is_qat, skip=skip, observer=observer)

    # -- PTQ: everything the backend quantizes in int8 ------------------------------------
    t = time.perf_counter()
    quantized = ptq(reference, quantizer(()), calib_set, progress)
    timings["ptq_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ptq_eval = _evaluate(ref_logits, quantized, eval_set)
    timings["evaluate_s"] += time.perf_counter() - t
    _say(f"PTQ int8: {numerics.summary_line(ptq_eval)}", progress)
    choice: dict[str, Any] | None = None
    if auto:
        choice = {"floor_db": min_sqnr_db, "static": ptq_eval, "dynamic": None, "chosen": "static"}
        if ptq_eval["sqnr_db"] < min_sqnr_db:
            t = time.perf_counter()
            dynamic = True  # quantizer() below reads it
            candidate = ptq(reference, quantizer(()), calib_set, progress)
            timings["ptq_s"] += time.perf_counter() - t
            t = time.perf_counter()
            choice["dynamic"] = candidate_eval = _evaluate(ref_logits, candidate, eval_set)
            timings["evaluate_s"] += time.perf_counter() - t
            if candidate_eval["sqnr_db"] > ptq_eval["sqnr_db"]:
                quantized, ptq_eval, choice["chosen"] = candidate, candidate_eval, "dynamic"
            else:
                dynamic = False
        choice["reason"] = _choice_reason(choice)
        _say(f"scheme: {choice['reason']}", progress)
    t = time.perf_counter()
    layers = _layer_analysis(reference, quantized, eval_set) if per_layer else []
    timings["per_layer_s"] = time.perf_counter() - t

    # -- mixed precision: the same flow with some layers left unannotated ----------------
    patterns, kept_layers = user_patterns, []
    mixed: dict[str, Any] | None = None
    if keep_fp32 or user_patterns:
        candidates = [s for s in layers if s.layer != numerics.TOP_LEVEL]
        kept_layers = [s.layer for s in numerics.most_sensitive(candidates, keep_fp32)] if keep_fp32 else []
        quantized = ptq(reference, quantizer(patterns, kept_layers), calib_set, progress)
        after = _evaluate(ref_logits, quantized, eval_set)
        _say(f"PTQ mixed precision ({len(kept_layers)} layers + {len(user_patterns)} patterns fp32): {numerics.summary_line(after)}",
             progress)
        mixed = {"keep_fp32": keep_fp32, "keep_fp32_modules": list(user_patterns), "kept_layers": kept_layers,
                 "before": ptq_eval, "after": after}
        layers = _layer_analysis(reference, quantized, eval_set) if per_layer else []
        ptq_eval = after

    qat_info: dict[str, Any] | None = None
    if qat_epochs:
        t = time.perf_counter()
        quantized, history = qat(reference, quantizer(patterns, kept_layers, is_qat=True), loader, qat_epochs, calib_set, progress)
        timings["qat_s"] = time.perf_counter() - t
        qat_eval = _evaluate(ref_logits, quantized, eval_set)
        _say(f"QAT int8: {numerics.summary_line(qat_eval)}", progress)
        qat_info = {"epochs": qat_epochs, "train": str(train_dir), "images": len(loader.dataset),
                    "history": history, "ptq": ptq_eval, "qat": qat_eval}
        final_eval = qat_eval
        # No per-layer rerun: QAT changes the weights, so every layer differs from the
        # fp32 model by more than quantization noise. The PTQ analysis stays the guide.
    else:
        final_eval = ptq_eval

    # -- the program the export command reads ----------------------------------------------
    t = time.perf_counter()
    program = export_batch1(quantized, preprocess.input_size)
    timings["export_int8_s"] = time.perf_counter() - t

    details = {
        "quantizer": spec.quantizer,
        "scheme": spec.scheme if not dynamic else DYNAMIC_SCHEME,
        "per_channel": spec.per_channel,
        "dynamic": bool(dynamic),
        "scheme_choice": choice,
        "method": "qat" if qat_epochs else "ptq",
        "observer": observer if backend == "xnnpack" and not dynamic else "backend default",
        "kept_fp32": [f"type:{t}" for t in default_types] + [f"layer:{n}" for n in default_layers]
                     + list(patterns) + kept_layers,
        **spec.extra,
    }
    pt2_meta = {
        "model": name,
        "task": meta["task"],
        "num_classes": meta["num_classes"],
        "class_names": list(meta["class_names"]),
        "preprocess": preprocess.to_state(),
        "options": dict(meta.get("options", {})),
        "backend": backend,
        "quantization": "q8",
        "quantization_details": details,
    }
    stem = f"{name}_{backend}_q8"
    report: dict[str, Any] = {
        "format": "dotcom-mobile/quant-report",
        "version": 1,
        "model": name,
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "backend": backend,
        "input_size": list(preprocess.input_size),
        "quantization_details": details,
        "calibration": {**calib_set.summary(), "synthetic": calib is None},
        "warnings": warnings,
        "evaluation": {"data": "val" if val_set is not None else "calibration",
                       "val": val_set.summary() if val_set is not None else None, **final_eval},
        "per_layer": None if not per_layer else {
            "images": min(PER_LAYER_IMAGES, len(eval_set)),
            "method": "torchao numeric debugger (prepare_for_propagation_comparison / compare_results); "
                      "sqnr_db is cumulative, drop_db = SQNR entering the layer minus SQNR leaving it",
            "model": "ptq",
            "worst_sqnr": [s.to_dict() for s in numerics.worst_by_sqnr(layers, 10)],
            "largest_drop": [s.to_dict() for s in numerics.most_sensitive(layers, 10)],
            "layers": [s.to_dict() for s in layers],
        },
        "mixed_precision": mixed,
        "qat": qat_info,
        "weights_int8": _quantized_layers(quantized),
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "versions": _versions(),
    }

    # -- write atomically ---------------------------------------------------------------------
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".quantize-", dir=out))
    try:
        pt2_tmp = tmp / f"{stem}.pt2"
        t = time.perf_counter()
        torch.export.save(program, pt2_tmp, extra_files={META_FILE: json.dumps(pt2_meta)})
        report["timings_s"]["save_s"] = round(time.perf_counter() - t, 2)
        report["artifact"] = {"file": pt2_tmp.name, "size_bytes": pt2_tmp.stat().st_size, "sha256": _sha256(pt2_tmp)}
        report["timings_s"]["total"] = round(time.perf_counter() - started, 2)
        (tmp / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
        from .report import render_markdown

        (tmp / REPORT_MD).write_text(render_markdown(report))
        for f in (REPORT_JSON, REPORT_MD, pt2_tmp.name):  # the artifact last: it marks success
            os.replace(tmp / f, out / f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = QuantizeResult(out / f"{stem}.pt2", out / REPORT_JSON, out / REPORT_MD, report)
    result.quantized_module = quantized  # type: ignore[attr-defined]  # for tests and callers in-process
    return result
