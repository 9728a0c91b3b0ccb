"""Small real ExecuTorch programs for tests: lowered in seconds, unlike DoTCoM.

Shared by conftest's session fixture ``toy`` and by tests that lower their own model.
"""

from __future__ import annotations

from pathlib import Path

import torch


def lower(model: torch.nn.Module, x: torch.Tensor, xnnpack: bool):
    """``torch.export`` -> ``to_edge_transform_and_lower`` (XNNPACK or portable) -> ``to_executorch``."""
    from executorch.exir import to_edge_transform_and_lower

    partitioner = []
    if xnnpack:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        partitioner = [XnnpackPartitioner()]
    ep = torch.export.export(model.eval(), (x,), strict=True)
    return to_edge_transform_and_lower(ep, partitioner=partitioner).to_executorch()


def bundle(manager, x: torch.Tensor, expected: torch.Tensor) -> bytes:
    """A .bpte: the program with ``x`` and the outputs it must reproduce."""
    from executorch.devtools import BundledProgram
    from executorch.devtools.bundled_program.config import MethodTestCase, MethodTestSuite
    from executorch.devtools.bundled_program.serialize import (
        serialize_from_bundled_program_to_flatbuffer,
    )

    suite = MethodTestSuite("forward", [MethodTestCase(inputs=[x], expected_outputs=[expected])])
    return serialize_from_bundled_program_to_flatbuffer(BundledProgram(manager, [suite]))


def build_toy(d: Path) -> dict:
    """A small conv net as portable and XNNPACK .pte, a .bpte, and its torch.export .pt2."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(8, 4),
    ).eval()
    x = torch.randn(1, 3, 16, 16)
    out = {"x": x, "dir": d}
    for name, xnn in (("portable", False), ("xnnpack", True)):
        manager = lower(model, x, xnn)
        path = d / f"toy_{name}_fp32.pte"
        path.write_bytes(manager.buffer)
        out[name] = path
    with torch.no_grad():
        out["eager"] = model(x)
    out["bpte"] = d / "toy_xnnpack_fp32.bpte"
    out["bpte"].write_bytes(bundle(manager, x, out["eager"]))
    out["pt2"] = d / "toy.pt2"
    torch.export.save(torch.export.export(model, (x,), strict=True), out["pt2"])
    return out
