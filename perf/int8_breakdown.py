"""Where does XNNPACK int8 time go? fp32 vs int8 .pte of small graphs and of whole DoTCoM.

``python -m dotcom_mobile.perf.int8_breakdown [--size 256] [--budget 1.0] [--probes ...]``

Each probe is lowered twice through export's one lowering path: fp32, and int8
(torchao PT2E with the project's XNNPACK quantizer, calibrated on a few random
inputs: latency does not depend on the scales). Both run in ExecuTorch's Python
runtime on one XNNPACK thread, in alternating blocks, timed in *thread CPU time* so
that the ratio survives a busy machine. The probes isolate one suspect each:

* ``pw_silu`` / ``pw_relu`` / ``pw_none``: a 1x1 expansion conv (16 -> 96 channels,
  the first MV2 of Tiny at 128x128) followed by BN and SiLU, ReLU or nothing. Stock
  ExecuTorch 1.5 leaves SiLU in fp32 (int8 conv -> convert -> sigmoid -> multiply ->
  convert, on the widest tensor of the block); the project's quantizer and partitioner
  keep it int8 (``quantize/backends.py``, ``export/targets.py``). ReLU is fused into
  the int8 conv's output clamp.
* ``pw_k16`` ... ``pw_k256``: a bare 1x1 conv from K = 16 ... 256 channels to 96 on a
  (size/4)^2 map. XNNPACK runs it as a fully connected GEMM with reduction depth K; on
  x86 without VNNI its int8 GEMM widens int8 to int16 and multiplies with
  ``vpmaddwd``, no more multiply-adds per cycle than fp32 FMA, so int8 wins only what
  it saves in memory traffic and loses the requantization of every output: the ratio
  falls with K (AVX2 Zen 3, two runs: 1.2-2.1 for K <= 64, 0.9-1.0 at 128, 0.84-0.87
  at 256). DoTCoM-Tiny's convs and linears mostly have K <= 96; Large's are wider,
  which is why Large meets the AVX2 target and Tiny does not.
* ``dw_silu``: the depthwise 3x3 that follows (96 channels, 128x128): depthwise int8
  kernels gain little over fp32 even without the converts.
* ``stem_stage1``: stem + stages 0-1 of Tiny (the high-resolution part, 2/3 of its MACs).
* ``tiny`` and ``tiny_relu``: the whole model, and the same graph with every SiLU
  replaced by ReLU. ``tiny_relu`` changes the model's math: it is a *diagnostic* (how
  fast int8 would be if the activations were int8-friendly), not a deployable model.

Prints a Markdown table (CPU ms of fp32 and int8, their ratio, partitions) for
perf/README.md.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

GEMM_DEPTHS = (16, 32, 64, 128, 256)
PROBES = ("pw_none", "pw_relu", "pw_silu", *(f"pw_k{k}" for k in GEMM_DEPTHS), "dw_silu", "stem_stage1", "tiny",
          "tiny_relu")


def _conv_bn(cin: int, cout: int, k: int, groups: int = 1, act: type[nn.Module] | None = None) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers).eval()


def _swap_silu(module: nn.Module) -> nn.Module:
    """Every nn.SiLU -> nn.ReLU, in place (diagnostic only: different math)."""
    for name, child in module.named_children():
        if isinstance(child, nn.SiLU):
            setattr(module, name, nn.ReLU())
        else:
            _swap_silu(child)
    return module


def build_probe(name: str, size: int) -> tuple[nn.Module, tuple[int, ...]]:
    """(module in its deployment form, input shape) for probe ``name`` at model input ``size``."""
    from dotcom_mobile.model import create_model
    from dotcom_mobile.model.deploy import to_deploy

    half = size // 2
    if name.startswith("pw_k"):
        k = int(name[4:])
        return nn.Sequential(nn.Conv2d(k, 96, 1)).eval(), (1, k, size // 4, size // 4)
    if name.startswith("pw_"):
        act = {"pw_none": None, "pw_relu": nn.ReLU, "pw_silu": nn.SiLU}[name]
        return _conv_bn(16, 96, 1, act=act), (1, 16, half, half)
    if name == "dw_silu":
        return _conv_bn(96, 96, 3, groups=96, act=nn.SiLU), (1, 96, half, half)
    tiny = to_deploy(create_model("dotcom_tiny", num_classes=1000), "xnnpack")
    if name == "stem_stage1":
        return nn.Sequential(tiny.stem, tiny.stages[0], tiny.stages[1]).eval(), (1, 3, size, size)
    if name == "tiny":
        return tiny, (1, 3, size, size)
    if name == "tiny_relu":
        return _swap_silu(tiny), (1, 3, size, size)
    raise ValueError(f"unknown probe {name!r} ({', '.join(PROBES)})")


def lower_pair(model: nn.Module, shape: Sequence[int], out_dir: Path, stem: str) -> tuple[Path, Path, dict, dict]:
    """fp32 and int8 .pte of ``model`` through export's lowering path; returns paths and delegation."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from dotcom_mobile.export.api import lower
    from dotcom_mobile.export.targets import Options, resolve_targets
    from dotcom_mobile.quantize.backends import make_quantizer

    (target,) = resolve_targets("xnnpack")
    x = torch.randn(*shape)
    ep = torch.export.export(model, (x,), strict=True)
    prog, d32 = lower(ep, target, Options())
    fp32 = out_dir / f"{stem}_fp32.pte"
    fp32.write_bytes(prog.buffer)

    prepared = prepare_pt2e(torch.export.export(copy.deepcopy(model), (x,), strict=True).module(),
                            make_quantizer("xnnpack"))
    with torch.no_grad():
        for i in range(2):
            prepared(torch.randn(*shape, generator=torch.Generator().manual_seed(i)))
    q = convert_pt2e(prepared)
    prog8, d8 = lower(torch.export.export(q, (x,), strict=False), target, Options(quantized=True))
    int8 = out_dir / f"{stem}_q8.pte"
    int8.write_bytes(prog8.buffer)
    return fp32, int8, d32, d8


def _cpu_ms_per_call(path: Path, budget_s: float) -> float:
    """Mean CPU ms of the calling thread per ``forward`` (1 XNNPACK thread runs on the caller).

    Thread CPU time instead of wall time: on a 2-core machine shared with other jobs
    the wall clock measures the scheduler; the CPU time a single-threaded call consumes
    barely moves with the load (caches and memory bandwidth are still shared). The
    kernel accounts it in scheduler ticks (4 ms here), so one call cannot be timed:
    calls are repeated until ``budget_s`` of CPU is spent and the mean is returned.
    """
    import time

    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    from executorch.runtime import Runtime

    from dotcom_mobile.bench.runners import make_input, native_log

    with native_log():
        _unsafe_reset_threadpool(1)
        method = Runtime.get().load_program(path).load_method("forward")
    x = [make_input(list(method.metadata.input_tensor_meta(0).sizes()))]
    for _ in range(3):
        method.execute(x)
    calls, t0 = 0, time.thread_time_ns()
    while calls < 5 or time.thread_time_ns() - t0 < budget_s * 1e9:
        method.execute(x)
        calls += 1
    return (time.thread_time_ns() - t0) / 1e6 / calls


def time_pair(fp32: Path, int8: Path, budget_s: float, rounds: int = 3) -> tuple[list[float], list[float]]:
    """Per-block mean CPU ms of each program, ``rounds`` alternating fp32/int8 blocks."""
    blocks: dict[Path, list[float]] = {fp32: [], int8: []}
    for _ in range(rounds):
        for path in (fp32, int8):
            blocks[path].append(_cpu_ms_per_call(path, budget_s))
    return blocks[fp32], blocks[int8]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--budget", type=float, default=1.0, help="CPU seconds per timed block")
    ap.add_argument("--probes", nargs="*", default=list(PROBES), choices=PROBES)
    args = ap.parse_args(argv)
    print("Mean CPU ms per call, 1 XNNPACK thread (thread CPU time), median of 3 alternating blocks\n\n"
          "| probe | input | fp32 ms | int8 ms | int8/fp32 | partitions fp32/int8 |\n|---|---|---|---|---|---|",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="int8-breakdown-") as tmp:
        for name in args.probes:
            model, shape = build_probe(name, args.size)
            fp32, int8, d32, d8 = lower_pair(model, shape, Path(tmp), name)
            b32, b8 = time_pair(fp32, int8, args.budget)
            t32, t8 = statistics.median(b32), statistics.median(b8)
            print(f"| {name} | {'x'.join(map(str, shape[1:]))} | {t32:.2f} | {t8:.2f} | {t8 / t32:.2f} | "
                  f"{d32.get('partitions')}/{d8.get('partitions')} |", flush=True)

if __name__ == "__main__":
    from dotcom_mobile.export.noise import quiet_known_noise

    quiet_known_noise()  # as the CLI does: import-time library chatter unless DOTCOM_VERBOSE=1
    main()
