"""``export_model``: one lowering path for every ExecuTorch target, plus the .mlpackage.

``torch.export.export`` -> ``to_edge_transform_and_lower(partitioner=...)``
-> ``to_executorch()``; what differs per backend lives in :mod:`.targets`. Every file
is produced under a temporary name in the output folder and renamed into place only
once all of an artifact's files are complete, so a failed or interrupted export
leaves the folder as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from dotcom_mobile.model import DotcomError, PreprocessConfig, check_input_size, create_model
from dotcom_mobile.model.deploy import to_deploy
from dotcom_mobile.model.introspect import checkpoint_facts, choose_model, meta_facts
from dotcom_mobile.model.tracing import export_deploy, lean_provenance

from .manifest import build_manifest, delegation_summary, manifest_path_for, sha256_path, write_manifest
from .targets import COMPUTE_UNITS, Options, Target, compile_config, resolve_targets

INPUT_NAME = "image"
OUTPUT_NAMES = {"classify": ("logits",), "detect": ("box_regression", "class_logits"), "segment": ("mask_logits",)}
# Tolerances stored in a .bpte: a device's kernels differ from this machine's.
BUNDLE_TOLERANCE = {"fp32": (1e-3, 1e-3), "fp16": (2e-2, 5e-2), "q8": (5e-2, 1e-1)}  # (rtol, atol)
NUM_BUNDLED_INPUTS = 3


@dataclass
class ExportResult:
    """One written artifact: its path, its manifest (path and content), seconds taken."""

    path: Path
    manifest_path: Path
    manifest: dict[str, Any]
    seconds: float


@dataclass
class _Source:
    """The model to export: an eager module, or a quantized ExportedProgram from a .pt2."""

    meta: dict[str, Any]
    size: int
    model: torch.nn.Module | None = None
    program: Any = None  # torch.export.ExportedProgram when quantized
    details: dict[str, Any] | None = None
    origin: dict[str, Any] | None = None


def example_input(size: int, seed: int = 0) -> torch.Tensor:
    """A fixed pseudo-random input: the same example gives the same exported graph."""
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def load_quantized(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """A quantize-room ``.pt2``: (ExportedProgram, its dotcom_meta with a PreprocessConfig)."""
    from dotcom_mobile.model.files import require_file
    from dotcom_mobile.quantize.api import load_quantized as _load

    ep, meta = _load(require_file(path, "quantized model"))
    meta["preprocess"] = PreprocessConfig.from_state(meta["preprocess"])
    return ep, meta


def _load_source(model_name: str | None, checkpoint: Any, quantized: Any, task: str,
                 input_size: int | None) -> _Source:
    if quantized is not None:
        if checkpoint is not None:
            raise DotcomError("give --checkpoint or --quantized, not both (the .pt2 already holds the weights)")
        ep, meta = load_quantized(quantized)
        choose_model(model_name, meta_facts(meta, str(quantized)))  # a --model that says otherwise is one line
        size = int(ep.example_inputs[0][0].shape[-1]) if ep.example_inputs else meta["preprocess"].input_size[-1]
        if input_size is not None and input_size != size:
            raise DotcomError(f"{quantized} was exported at {size}x{size}; quantize again with --input-size {input_size}")
        from dotcom_mobile.quantize.backends import BACKENDS
        from dotcom_mobile.quantize.numerics import precision_summary

        spec = BACKENDS.get(meta.get("backend", ""))
        details = {"quantizer_backend": meta.get("backend"), **(meta.get("quantization_details") or {}),
                   "graph": precision_summary(ep.graph, spec.int8_kernels if spec else None)}
        return _Source(meta, size, program=ep, details=details,
                       origin={"quantized": str(quantized)})
    facts = checkpoint_facts(checkpoint) if checkpoint is not None else None
    model_name = choose_model(model_name, facts,
                              needs="give --model NAME (or a project --checkpoint, or a --quantized .pt2)")
    model = create_model(model_name, task=task, checkpoint=checkpoint)
    size = input_size or model.dotcom_meta["preprocess"].input_size[-1]
    return _Source(model.dotcom_meta, size, model=model,
                   origin={"checkpoint": None if checkpoint is None else str(checkpoint)})


@contextlib.contextmanager
def _out_dir(out_dir: str | Path) -> Iterator[Path]:
    """The output folder, checked writable up front; removed again if we made it and wrote nothing."""
    out = Path(out_dir)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise DotcomError(f"cannot write to output folder {out}: {e.strerror or e}") from None
    try:
        yield out
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()
        raise


class _Progress:
    """Stage-by-stage progress on stderr that keeps its clock ticking during long steps."""

    def __init__(self, label: str, stages: Sequence[str], enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=len(stages), desc=label, unit="step", leave=False, disable=None,
                            bar_format="{desc}: {n}/{total} {postfix} [{elapsed}]")
            if self.bar.disable:  # not a terminal: no bar, no ticking
                self.bar = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True) if self.bar is not None else None
        if self._thread:
            self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self.bar.refresh()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        yield
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        self._stop.set()
        if self.bar is not None:
            self.bar.close()


class _Staging:
    """Temp files/folders in the output folder, renamed into place together by commit()."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.pending: list[tuple[Path, Path]] = []

    def path(self, final_name: str) -> Path:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final_name}.", suffix=".tmp", dir=self.out)) / final_name
        self.pending.append((tmp, self.out / final_name))
        return tmp

    def commit(self) -> None:
        for tmp, final in self.pending:
            if tmp.is_dir():  # .mlpackage: a folder cannot be os.replace'd over a non-empty one
                old = None
                if final.exists():
                    old = final.with_name(f".{final.name}.old-{os.getpid()}")
                    os.replace(final, old)
                os.replace(tmp, final)
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)

    def cleanup(self) -> None:
        for tmp, _ in self.pending:
            shutil.rmtree(tmp.parent, ignore_errors=True)


def run_program(program: str | Path | bytes, inputs: Sequence[torch.Tensor], method: str = "forward") -> list[torch.Tensor]:
    """Execute a .pte (path or bytes) with ``executorch.runtime`` (XNNPACK/portable only here).

    The runtime's own log (cpuinfo probing on some CPUs: "CPU info and manual query on #
    of cpus dont match") is kept off the terminal of ``export --bundled``; when loading
    or running fails, its last telling line is added to the exception.
    """
    from executorch.runtime import Runtime

    from .pte import runtime_call

    with runtime_call() as call:
        loaded = Runtime.get().load_program(program if isinstance(program, bytes) else Path(program))
        # The runtime reads raw memory in the declared (contiguous) layout: a strided view,
        # such as torchvision's channels-last output, would be read scrambled.
        outputs = list(loaded.load_method(method).execute([t.contiguous() for t in inputs]))
    if call.error is not None:
        if call.reason:
            call.error.add_note(f"ExecuTorch: {call.reason}")
        raise call.error
    return outputs


def delegate_payloads(pte: str | Path | bytes) -> list[tuple[str, bytes]]:
    """(backend id, processed payload) of every delegate inside a .pte, in program order.

    The payload is what the backend's ``preprocess`` produced (a Core ML model folder,
    a Vulkan graph, an XNNPACK subgraph): the part of a Core ML or Vulkan artifact that
    this machine can inspect although it cannot run it.
    """
    from executorch.exir._serialize._program import deserialize_pte_binary
    from executorch.exir.schema import DataLocation

    data = pte if isinstance(pte, bytes) else Path(pte).read_bytes()
    program = deserialize_pte_binary(data).program  # moves segment data back inline
    out = []
    for plan in program.execution_plan:
        for d in plan.delegates:
            if d.processed.location != DataLocation.INLINE:  # pragma: no cover - restored by the deserializer
                raise ValueError(f"{d.id} payload is not inline after deserialization")
            out.append((d.id, bytes(program.backend_delegate_data[d.processed.index].data)))
    return out


def program_backends(pte: str | Path | bytes) -> list[str]:
    """Backend ids of the delegates inside a .pte (e.g. ``['XnnpackBackend']``)."""
    return [backend for backend, _ in delegate_payloads(pte)]


def output_values(ep: Any) -> list[Any]:
    """The program's user outputs as the tracer recorded them (shape and dtype, no data).

    Read from the graph rather than by running ``ep.module()``: unlifting a program into a
    module re-generates its code (3 s for Tiny's int8 graph of 1,800 nodes).
    """
    from torch.export.graph_signature import OutputKind

    values = list(ep.graph.output_node().args[0])
    kinds = [spec.kind for spec in ep.graph_signature.output_specs]
    return [v.meta["val"] for v, kind in zip(values, kinds) if kind == OutputKind.USER_OUTPUT]


def _outputs(task: str, sample: Any) -> list[dict[str, Any]]:
    """Output names and shapes; kinds as in the manifest schema (a detector's tuple, in order)."""
    outs = sample if isinstance(sample, (tuple, list)) else (sample,)
    names = OUTPUT_NAMES[task] if len(outs) == len(OUTPUT_NAMES[task]) else tuple(f"output_{i}" for i in range(len(outs)))
    kind = {"box_regression": "box_regression", "class_logits": "class_logits", "mask_logits": "mask_logits"}
    return [{"name": n, "shape": list(o.shape), "kind": kind.get(n, "logits")} for n, o in zip(names, outs)]


def _bundle(prog: Any, inputs: list[torch.Tensor], expected: list[list[torch.Tensor]], path: Path) -> None:
    from executorch.devtools import BundledProgram
    from executorch.devtools.bundled_program.config import MethodTestCase, MethodTestSuite
    from executorch.devtools.bundled_program.serialize import serialize_from_bundled_program_to_flatbuffer

    cases = [MethodTestCase(inputs=[x], expected_outputs=list(y)) for x, y in zip(inputs, expected)]
    bundled = BundledProgram(prog, [MethodTestSuite(method_name="forward", test_cases=cases)])
    path.write_bytes(serialize_from_bundled_program_to_flatbuffer(bundled))


def deploy_program(model: torch.nn.Module, target: Target, x: torch.Tensor) -> Any:
    """``torch.export`` of the model's deployment form for ``target`` (see :mod:`dotcom_mobile.model.tracing`)."""
    return export_deploy(to_deploy(model, target.backend), x)


def lower(ep: Any, target: Target, opts: Options, *, etrecord: bool = False) -> tuple[Any, dict[str, Any]]:
    """The one lowering path: edge + partitioner, then ``to_executorch``; returns (program, delegation)."""
    import logging

    from executorch.exir import to_edge_transform_and_lower

    root, level = logging.getLogger(), logging.getLogger().level
    partitioners = target.partitioners(opts)
    root.setLevel(level)  # Vulkan's modules set the root logger to INFO on import: hundreds of lines
    with target.quiet(), lean_provenance(), target.lowering(ep):
        edge = to_edge_transform_and_lower(
            ep, partitioner=partitioners,
            transform_passes=target.transform_passes() if target.transform_passes else None,
            compile_config=compile_config(opts.quantized), generate_etrecord=etrecord)
        delegation = delegation_summary(edge.exported_program().graph_module)
        return edge.to_executorch(), delegation


def _export_pte(src: _Source, target: Target, opts: Options, stem: str, stage: _Staging, progress: _Progress,
                bundled: bool, etrecord: bool) -> tuple[Path, dict[str, Any]]:
    x = example_input(src.size)
    with progress.stage("torch.export"):
        ep = src.program if src.program is not None else deploy_program(src.model, target, x)
        sample = output_values(ep)
    with progress.stage(f"lowering to {target.name}"):
        prog, delegation = lower(ep, target, opts, etrecord=etrecord)
    with progress.stage("writing"):
        pte = stage.path(f"{stem}.pte")
        pte.write_bytes(prog.buffer)
        extra: dict[str, Any] = {}
        if bundled:
            extra["bundled"] = _write_bundle(src, prog, pte, target, opts, stem, stage)
        if etrecord:
            rec = stage.path(f"{stem}.etrecord")
            prog.get_etrecord().save(str(rec))
            extra["etrecord"] = rec.name
    return pte, {"delegation": delegation, "outputs": _outputs(src.meta["task"], sample), **extra}


def _write_bundle(src: _Source, prog: Any, pte: Path, target: Target, opts: Options, stem: str,
                  stage: _Staging) -> dict[str, Any]:
    """Reference inputs with the outputs a device must reproduce.

    Where this machine can run the program (XNNPACK), the expected outputs are the
    runtime's own; Core ML/Vulkan/QNN cannot run here, so theirs are the eager module's
    and the tolerances account for fp16.
    """
    inputs = [example_input(src.size, seed) for seed in range(1, NUM_BUNDLED_INPUTS)] + [
        torch.zeros(1, 3, src.size, src.size)]
    if target.backend in ("xnnpack", "portable"):
        expected = [run_program(pte, [x]) for x in inputs]
        how = "runtime"
    else:
        module = src.program.module() if src.program is not None else to_deploy(src.model, target.backend)
        with torch.no_grad():
            expected = [list(y) if isinstance(y := module(x), (tuple, list)) else [y] for x in inputs]
        how = "eager"
    path = stage.path(f"{stem}.bpte")
    _bundle(prog, inputs, expected, path)
    rtol, atol = BUNDLE_TOLERANCE[target.quant_token(opts)]
    digest, size = sha256_path(path)
    return {"file": path.name, "sha256": digest, "size_bytes": size, "num_inputs": len(inputs), "rtol": rtol,
            "atol": atol, "inputs": f"N(0,1) noise (seeds 1..{NUM_BUNDLED_INPUTS - 1}) and an all-zero image; "
                                    f"expected outputs from the {how} module"}


def _export_mlpackage(src: _Source, target: Target, opts: Options, stem: str, stage: _Staging,
                      progress: _Progress) -> tuple[Path, dict[str, Any]]:
    """Standalone Core ML: coremltools converts the decomposed ExportedProgram (ML program)."""
    import coremltools as ct
    import numpy as np

    meta, task, x = src.meta, src.meta["task"], example_input(src.size)
    classify = task == "classify"
    with progress.stage("torch.export"):
        if src.program is not None:
            ep = src.program
        else:
            module = to_deploy(src.model, target.backend)
            # Core ML classifiers hand out probabilities (Vision's confidences): append softmax.
            module = torch.nn.Sequential(module, torch.nn.Softmax(-1)).eval() if classify else module
            ep = export_deploy(module, x)
        with lean_provenance():
            ep = ep.run_decompositions({})
    outputs = _outputs(task, output_values(ep))
    if classify and src.program is None:
        outputs[0].update(name="probabilities", kind="probabilities")
    with progress.stage("converting with coremltools"), target.quiet():
        mlmodel = ct.convert(
            ep, inputs=[ct.TensorType(name=INPUT_NAME, shape=tuple(x.shape), dtype=np.float32)],  # as the manifest
            outputs=[ct.TensorType(name=o["name"]) for o in outputs],
            classifier_config=ct.ClassifierConfig(list(meta["class_names"])) if classify else None,
            convert_to="mlprogram", compute_precision=ct.precision.FLOAT16,
            minimum_deployment_target=ct.target.iOS17, compute_units=ct.ComputeUnit[opts.compute_unit])
        # The classifier keeps the graph's own name for the probabilities: rename to ours.
        spec = mlmodel.get_spec()
        got = [o.name for o in spec.description.output if o.name != spec.description.predictedFeatureName]
        if got != [o["name"] for o in outputs]:
            for old, new in zip(got, (o["name"] for o in outputs)):
                ct.utils.rename_feature(spec, old, new)
            if classify:
                spec.description.predictedProbabilitiesName = outputs[0]["name"]
            mlmodel = ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True)
    with progress.stage("writing"):
        pre = meta["preprocess"].with_size(src.size)
        mlmodel.short_description = f"{meta['model']} ({task}), {src.size}x{src.size}, exported by dotcom-mobile"
        mlmodel.input_description[INPUT_NAME] = (
            f"RGB image as float32 NCHW [1, 3, {src.size}, {src.size}]: resize shorter side to {pre.resize} "
            f"({pre.interpolation}), center-crop {src.size}, scale to 0..1, then (x - mean) / std with "
            f"mean {list(pre.mean)}, std {list(pre.std)}")
        mlmodel.user_defined_metadata["dotcom.preprocessing"] = json.dumps(pre.to_dict())
        mlmodel.user_defined_metadata["dotcom.model"] = meta["model"]
        for o in outputs:
            mlmodel.output_description[o["name"]] = f"{o['kind']} {o['shape']}"
        path = stage.path(f"{stem}.mlpackage")
        mlmodel.save(str(path))
        spec = mlmodel.get_spec()
    return path, {"delegation": None, "outputs": outputs, "mlpackage": mlpackage_summary(spec)}


def mlpackage_summary(spec: Any) -> dict[str, Any]:
    """Spec version, target and the ML program's op counts (what Core ML will run)."""
    from collections import Counter

    ops: Counter[str] = Counter()

    def walk(block: Any) -> None:
        for op in block.operations:
            ops[op.type] += 1
            for b in op.blocks:
                walk(b)

    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            walk(block)
    return {"spec_version": int(spec.specificationVersion), "minimum_deployment_target": "iOS17",
            "compute_precision": "float16", "ops": dict(sorted(ops.items()))}


def quiet_logs() -> None:
    """coremltools and the backends log warnings that are noise to a user of this command."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", module=r"(coremltools|executorch|torch|torchao)(\..*)?")
    for name in ("coremltools", "executorch", "root", "torch._export", "torch.export"):
        logging.getLogger(name).setLevel(logging.ERROR)


def export_model(
    model_name: str | None = None,
    *,
    checkpoint: str | Path | None = None,
    quantized: str | Path | None = None,
    target: str = "xnnpack",
    task: str = "classify",
    input_size: int | None = None,
    fp16: bool = False,
    out_dir: str | Path = ".",
    bundled: bool = False,
    etrecord: bool = False,
    compute_unit: str = "ALL",
    progress: bool = True,
) -> list[ExportResult]:
    """Export a DoTCoM model (eager or quantized ``.pt2``) to one target or ``all``.

    Files: ``<model>_<backend>_<quant>.pte`` (or ``.mlpackage``) and ``<same stem>.json``
    in ``out_dir``; with ``bundled`` also ``.bpte``, with ``etrecord`` ``.etrecord``.
    Bad input raises :class:`DotcomError` before any lowering starts.
    """
    if compute_unit not in COMPUTE_UNITS:
        raise DotcomError(f"unknown compute unit {compute_unit!r} (choose from {', '.join(COMPUTE_UNITS)})")
    if input_size is not None:
        check_input_size(input_size, input_size)
    if fp16 and target == "xnnpack":
        raise DotcomError("--fp16 applies to vulkan (coreml and mlpackage are always fp16; xnnpack is fp32 or int8)")
    targets_ = resolve_targets(target)  # name and availability, before anything slow
    with _out_dir(out_dir) as out:
        src = _load_source(model_name, checkpoint, quantized, task, input_size)
        check_input_size(src.size, src.size)
        if quantized is not None:
            targets_ = resolve_targets(target, quantized_backend=src.meta.get("backend"))
        quiet_logs()
        opts = Options(fp16=fp16, compute_unit=compute_unit, quantized=quantized is not None)
        return [_export_one(src, t, opts, out, bundled=bundled, etrecord=etrecord, progress=progress)
                for t in targets_]


def _export_one(src: _Source, target: Target, opts: Options, out: Path, *, bundled: bool, etrecord: bool,
                progress: bool) -> ExportResult:
    start = time.perf_counter()
    stem = f"{src.meta['model']}_{target.backend}_{target.quant_token(opts)}"
    stages = ["torch.export", "lower", "write"] if target.fmt == "pte" else ["torch.export", "convert", "write"]
    bar = _Progress(f"{stem}", stages, progress)
    staging = _Staging(out)
    try:
        if target.fmt == "pte":
            path, parts = _export_pte(src, target, opts, stem, staging, bar, bundled, etrecord)
        else:
            path, parts = _export_mlpackage(src, target, opts, stem, staging, bar)
        source = {**(src.origin or {}), "input_size": src.size}
        if target.compute_unit:
            source["compute_unit"] = opts.compute_unit
        manifest = build_manifest(
            artifact=path, meta=src.meta, input_shape=(1, 3, src.size, src.size), backend=target.backend,
            quantization=target.quant_token(opts), compute_unit=opts.compute_unit if target.compute_unit else None,
            quantization_details=src.details, source=source, input_name=INPUT_NAME, **parts)
        final_manifest = manifest_path_for(out / path.name)
        write_manifest(manifest, staging.path(final_manifest.name))
        staging.commit()
    finally:
        staging.cleanup()
        bar.close()
    return ExportResult(out / path.name, final_manifest, manifest, time.perf_counter() - start)
