"""The per-backend part of the one lowering path: a small registry of export targets.

Every ``.pte`` target goes through the same three steps (``torch.export`` ->
``to_edge_transform_and_lower`` -> ``to_executorch``, see :mod:`.api`); a
:class:`Target` only says what differs: which partitioner (with which compile specs),
which deployment form of the model (``to_deploy(model, backend)``), which extra edge
passes, which precision token goes into the file name, and what must be installed.
Partitioners are built by factories so that importing this module imports no backend.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterator

from dotcom_mobile.export.passes import lean_xnnpack_lowering, xnnpack_transform_passes
from dotcom_mobile.model.errors import DotcomError

COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY")


@dataclass(frozen=True)
class Options:
    """What the user chose that a backend's lowering depends on."""

    fp16: bool = False
    compute_unit: str = "ALL"
    quantized: bool = False


@dataclass(frozen=True)
class Target:
    """One export target (``--target NAME``).

    ``backend`` is the token in file names and manifests and the key of
    ``model.deploy.BACKEND_REWRITES``; ``quantized_from`` lists the ``backend`` values
    of quantized ``.pt2`` files this target can lower (their quantizer decided the
    int8 layout, so an XNNPACK-quantized program is wrong for Core ML and vice versa).
    """

    name: str
    backend: str
    fmt: str  # "pte" or "mlpackage"
    partitioners: Callable[[Options], list] | None = None
    transform_passes: Callable[[], list] | None = None
    precision: Callable[[Options], str] = lambda o: "q8" if o.quantized else "fp32"
    quantized_from: tuple[str, ...] = ()
    missing: Callable[[], str | None] = lambda: None
    compute_unit: bool = False  # whether compute_unit applies (Core ML)
    quiet: Callable[[], ContextManager[None]] = contextlib.nullcontext  # wraps the backend's conversion
    # Wraps to_edge_transform_and_lower of one program (its argument): backend-specific speed-ups.
    lowering: Callable[[Any], ContextManager[None]] = lambda ep: contextlib.nullcontext()
    slow: bool = False
    notes: str = field(default="", compare=False)

    def quant_token(self, opts: Options) -> str:
        return self.precision(opts)


def xnnpack_partitioner_configs() -> list:
    """ExecuTorch's XNNPACK partitioner configs, with sigmoid allowed in int8.

    XNNPACK runs a qs8 sigmoid (the quantize room annotates SiLU's sigmoid with the
    fixed encoding it needs), but ExecuTorch's ``SigmoidConfig`` declares fp32 only, so
    an int8 sigmoid would be left outside the delegate. Its node visitor already
    serialises quantized tensors; only the declared precision changes.
    """
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
    from executorch.backends.xnnpack.partition.config.generic_node_configs import SigmoidConfig
    from executorch.backends.xnnpack.partition.config.xnnpack_config import ConfigPrecisionType

    class Int8SigmoidConfig(SigmoidConfig):
        def supported_precision_types(self) -> list:
            return [ConfigPrecisionType.FP32, ConfigPrecisionType.STATIC_QUANT]

    return [Int8SigmoidConfig if c is SigmoidConfig else c for c in ALL_PARTITIONER_CONFIGS]


def _xnnpack(opts: Options) -> list:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    class CheckedOnceXnnpackPartitioner(XnnpackPartitioner):
        """XNNPACK's partitioner, telling the edge pass up front when every kept op is supported.

        ``to_edge_transform_and_lower`` keeps the ops a partitioner wants whole (linear,
        hardswish, ...) from being decomposed. A partitioner that also returns a check
        function sends the program down a path of two extra full decompositions (the
        ``EDGE_DO_NOT_DECOMP`` path: decompose, mark the nodes the check accepts,
        decompose again), 17 of DoTCoM-Tiny's 45 s of edge generation on 2 cores. When
        the check accepts every such node of the graph, the marking would keep them all,
        which is what the plain path does: so the check is run here once and, if it
        holds for all, not returned. Any rejected node keeps ExecuTorch's own path.
        """

        def ops_to_not_decompose(self, ep):  # type: ignore[override]
            ops, check = super().ops_to_not_decompose(ep)
            if check is None:
                return ops, None
            kept = set(ops)
            nodes = [n for n in ep.graph.nodes if n.op == "call_function" and n.target in kept]
            return (ops, None) if all(check(n) for n in nodes) else (ops, check)

    return [CheckedOnceXnnpackPartitioner(configs=xnnpack_partitioner_configs())]




def coreml_compile_specs(compute_unit: str = "ALL") -> list:
    """fp16 compute precision, iOS 17 minimum, the chosen compute units."""
    import coremltools as ct
    from executorch.backends.apple.coreml.compiler import CoreMLBackend

    return CoreMLBackend.generate_compile_specs(
        compute_unit=ct.ComputeUnit[compute_unit],
        compute_precision=ct.precision.FLOAT16,
        minimum_deployment_target=ct.target.iOS17,
    )


# Where coremltools imports tqdm by name: the torch frontend's op loop and every MIL pass
# pipeline (several per model, each its own bar).
_COREMLTOOLS_BARS = (
    ("coremltools.converters.mil.frontend.torch.ops", "_tqdm"),
    ("coremltools.converters.mil.mil.passes.pass_pipeline", "tqdm"),
)


@contextlib.contextmanager
def quiet_coremltools() -> Iterator[None]:
    """Silence coremltools' own progress bars while converting.

    A Core ML lowering draws five or more tqdm bars of its own under export's progress
    line, on every run and also when export was asked to be quiet. They are swapped for
    disabled ones for the duration and restored after; a coremltools without these names
    is left alone. ExecuTorch's Core ML backend also warns on every model that "specification
    version 8 will not run on all versions of iOS": that is the iOS 17 minimum chosen on
    purpose (and written in the manifest), so its logger is held at ERROR meanwhile. (That
    logger sets its own level when its module is imported, during lowering, which is why
    ``export.api.quiet_logs`` silencing "executorch" beforehand does not reach it.)
    """
    import logging

    patched: list[tuple[Any, str, Any]] = []
    preprocess_log = logging.getLogger("executorch.backends.apple.coreml.compiler.coreml_preprocess")
    level = preprocess_log.level
    preprocess_log.setLevel(logging.ERROR)
    for module_name, attr in _COREMLTOOLS_BARS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        bar = getattr(module, attr, None)
        if bar is not None:
            patched.append((module, attr, bar))
            setattr(module, attr, functools.partial(bar, disable=True))
    try:
        yield
    finally:
        preprocess_log.setLevel(level)
        for module, attr, bar in patched:
            setattr(module, attr, bar)


def _coreml(opts: Options) -> list:
    from executorch.backends.apple.coreml.partition import CoreMLPartitioner

    return [CoreMLPartitioner(compile_specs=coreml_compile_specs(opts.compute_unit))]


def _vulkan(opts: Options) -> list:
    # Imported here, not at lowering time: these modules set the *root* logger to INFO on
    # import, and lower() restores the caller's level once the partitioners exist.
    import executorch.backends.vulkan.vulkan_preprocess  # noqa: F401
    from executorch.backends.vulkan.partitioner.vulkan_partitioner import VulkanPartitioner

    return [VulkanPartitioner({"force_fp16": True} if opts.fp16 else {})]


def _qnn_missing() -> str | None:
    """The Qualcomm AI Engine Direct SDK is a separate download; say exactly what is absent."""
    root = os.environ.get("QNN_SDK_ROOT")
    if not root:
        return ("target qnn needs the Qualcomm AI Engine Direct (QNN) SDK: QNN_SDK_ROOT is not set "
                "(install the SDK and export QNN_SDK_ROOT=/path/to/qairt/<version>)")
    if not os.path.isdir(root):
        return f"target qnn: QNN_SDK_ROOT={root} is not a directory"
    try:
        import executorch.backends.qualcomm.python.PyQnnManagerAdaptor  # noqa: F401
    except ImportError as e:
        return f"target qnn: the executorch qnn backend python package does not load ({e})"
    return None


def _qnn(opts: Options) -> list:
    from executorch.backends.qualcomm.partition.qnn_partitioner import QnnPartitioner
    from executorch.backends.qualcomm.utils.utils import (
        generate_htp_compiler_spec, generate_qnn_executorch_compiler_spec, get_soc_to_chipset_map,
    )

    soc = get_soc_to_chipset_map()[os.environ.get("QNN_SOC_MODEL", "SM8650")]
    specs = generate_qnn_executorch_compiler_spec(
        soc_model=soc, backend_options=generate_htp_compiler_spec(use_fp16=not opts.quantized))
    return [QnnPartitioner(specs)]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("xnnpack", "xnnpack", "pte", _xnnpack, xnnpack_transform_passes, quantized_from=("xnnpack",),
               lowering=lean_xnnpack_lowering,
               notes="CPU (Android, iOS, desktop); fp32, or int8 from an XNNPACK-quantized .pt2"),
        Target("coreml", "coreml", "pte", _coreml, precision=lambda o: "q8" if o.quantized else "fp16",
               quantized_from=("coreml",), compute_unit=True, quiet=quiet_coremltools, slow=True,
               notes="Core ML delegate inside a .pte (iOS/macOS); fp16, iOS 17"),
        Target("vulkan", "vulkan", "pte", _vulkan, precision=lambda o: "fp16" if o.fp16 else "fp32", slow=True,
               notes="Android GPU; fp32 or --fp16"),
        Target("mlpackage", "mlpackage", "mlpackage", precision=lambda o: "q8" if o.quantized else "fp16",
               quantized_from=("coreml",), compute_unit=True, quiet=quiet_coremltools, slow=True,
               notes="standalone Core ML ML program (.mlpackage); fp16, iOS 17"),
        Target("qnn", "qnn", "pte", _qnn, precision=lambda o: "q8" if o.quantized else "fp16",
               quantized_from=("qnn",), missing=_qnn_missing, slow=True,
               notes="Qualcomm HTP; needs the QNN SDK (QNN_SDK_ROOT)"),
    )
}


def resolve_targets(name: str, *, quantized_backend: str | None = None) -> list[Target]:
    """``--target`` -> targets; ``all`` means every available one (that fits a quantized .pt2)."""
    if name == "all":
        chosen = [t for t in TARGETS.values() if t.missing() is None]
        if quantized_backend is not None:
            chosen = [t for t in chosen if quantized_backend in t.quantized_from]
            if not chosen:
                raise DotcomError(f"no available target lowers a model quantized for {quantized_backend}")
        return chosen
    if name not in TARGETS:
        import difflib

        close = difflib.get_close_matches(name, list(TARGETS), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise DotcomError(f"unknown target {name!r} (choose from {', '.join([*TARGETS, 'all'])}){hint}")
    target = TARGETS[name]
    if (why := target.missing()) is not None:
        raise DotcomError(why)
    if quantized_backend is not None and quantized_backend not in target.quantized_from:
        fits = [t.name for t in TARGETS.values() if quantized_backend in t.quantized_from]
        again = f", or quantize again with --backend {name}" if name in ("xnnpack", "coreml") else ""
        raise DotcomError(f"the quantized model was made for {quantized_backend}, not {name} "
                          f"(export it with --target {' or '.join(fits) or '?'}{again})")
    return [target]


def describe_targets() -> list[tuple[str, str]]:
    """(name, notes) rows for ``--help``."""
    return [(t.name, t.notes) for t in TARGETS.values()]


def compile_config(quantized: bool) -> Any:
    """Edge IR validity checks reject the quantize/dequantize ops of PT2E programs."""
    from executorch.exir import EdgeCompileConfig

    return EdgeCompileConfig(_check_ir_validity=not quantized)
