"""Measure delegation (and XNNPACK correctness) for every DoTCoM variant and backend.

    python -m dotcom_mobile.perf.measure_delegation [--size 256] [--models dotcom_tiny ...]
        [--targets xnnpack,xnnpack_q8,coreml,vulkan]

Lowers each variant (random weights, seeded) through the same path as ``export`` and
prints one row per (model, target): partitions, delegated/total nodes, the ops left
outside the delegate, and a correctness check: XNNPACK fp32 max |pte - eager|, XNNPACK
int8 SQNR of the .pte against the quantized eager module; Core ML and Vulkan cannot
run here, so their row checks that the program loads and holds the backend's payload.
Lowering all 16 combinations takes long on a small machine: run it once, not in tests.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Sequence

import torch

EXPECTED_BACKEND_ID = {"xnnpack": "XnnpackBackend", "coreml": "CoreMLBackend", "vulkan": "VulkanBackend"}


def sqnr_db(ref: torch.Tensor, out: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio of ``out`` against ``ref`` in dB."""
    signal, noise = ref.double().pow(2).sum(), (ref.double() - out.double()).pow(2).sum()
    if signal == 0:
        raise ValueError("SQNR of an all-zero reference is undefined")
    return float("inf") if noise == 0 else float(10 * torch.log10(signal / noise))


def measure(models: Sequence[str], targets: Sequence[str], size: int, num_calib: int = 8) -> list[dict[str, Any]]:
    from dotcom_mobile.export.api import deploy_program, example_input, lower, program_backends, run_program
    from dotcom_mobile.export.targets import TARGETS, Options
    from dotcom_mobile.model import create_model

    rows = []
    for name in models:
        torch.manual_seed(0)
        model = create_model(name)
        x = example_input(size)
        for key in targets:
            quant = key.endswith("_q8")
            target = TARGETS[key.removesuffix("_q8")]
            opts = Options(quantized=quant)
            start = time.perf_counter()
            if quant:  # the quantize room's own recipe, so the row describes what users export
                from dotcom_mobile.quantize.recipes import quantized_program

                calib = [example_input(size, seed) for seed in range(1, num_calib + 1)]
                ep = quantized_program(model, calib, backend=target.backend)
            else:
                ep = deploy_program(model, target, x)
            prog, d = lower(ep, target, opts)
            seconds = time.perf_counter() - start
            ids = program_backends(prog.buffer)
            if target.name == "xnnpack":
                with torch.no_grad():
                    ref = ep.module()(x)
                out = run_program(prog.buffer, [x])[0]
                check = (f"SQNR {sqnr_db(ref, out):.1f} dB, |ref| {ref.abs().max():.2g}" if quant
                         else f"max|diff| {(ref - out).abs().max():.1e}")
            else:
                from executorch.runtime import Runtime

                Runtime.get().load_program(prog.buffer)  # parses; running needs the device's backend
                check = f"loads, payload {'present' if EXPECTED_BACKEND_ID[target.name] in ids else 'MISSING'}"
            rows.append({"model": name, "target": key, **d, "check": check, "seconds": seconds,
                         "size_mib": len(prog.buffer) / 2**20})
            print(format_row(rows[-1]), flush=True)
    return rows


HEADER = f"{'model':<13} {'target':<11} {'parts':>5} {'delegated':>11} {'fraction':>8}  {'check':<28} {'time':>6}  not delegated"


def format_row(r: dict[str, Any]) -> str:
    left = ", ".join(f"{op} x{n}" for op, n in r["non_delegated_ops"].items()) or "-"
    return (f"{r['model']:<13} {r['target']:<11} {r['partitions']:>5} "
            f"{r['delegated_nodes']:>5}/{r['total_nodes']:<5} {r['fraction']:>8.2%}  {r['check']:<28} "
            f"{r['seconds']:>5.0f}s  {left}")


def main(argv: Sequence[str] | None = None) -> None:
    from dotcom_mobile.model import list_models

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--models", nargs="+", default=list_models())
    parser.add_argument("--targets", default="xnnpack,xnnpack_q8,coreml,vulkan")
    args = parser.parse_args(argv)
    from dotcom_mobile.export.api import quiet_logs

    quiet_logs()
    print(HEADER, flush=True)
    measure(args.models, args.targets.split(","), args.size)


if __name__ == "__main__":
    from dotcom_mobile.export.noise import quiet_known_noise

    quiet_known_noise()  # as the CLI does: import-time library chatter unless DOTCOM_VERBOSE=1
    main()
