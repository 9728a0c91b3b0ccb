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


def bundled_cases(data: bytes) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """(inputs, expected outputs) of each test case of a .bpte's first method, as fp32 tensors."""
    from executorch.devtools.bundled_program.serialize import deserialize_from_flatbuffer_to_bundled_program

    def tensor(v) -> torch.Tensor:
        t = v.val
        return torch.frombuffer(bytearray(t.data), dtype=torch.float32).reshape(list(t.sizes))

    cases = deserialize_from_flatbuffer_to_bundled_program(data).method_test_suites[0].test_cases
    return [([tensor(v) for v in c.inputs], [tensor(v) for v in c.expected_outputs]) for c in cases]


def off_by_one(data: bytes) -> bytes:
    """A .bpte whose first case's stored expected output is off by one (its verification must fail)."""
    (_, (expected, *_)), *_ = bundled_cases(data)
    raw = expected.numpy().tobytes()
    at = data.find(raw)
    assert at >= 0 and data.find(raw, at + 1) < 0, "the expected output's bytes are not unique in the file"
    return data[:at] + (expected + 1.0).numpy().tobytes() + data[at + len(raw):]
