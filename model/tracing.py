"""How the deployment form is captured with ``torch.export``, and kept cheap to lower.

Quantize and export both start from a ``torch.export`` of the deployment form, and
both then run tens of graph passes (PT2E's prepare/convert, ExecuTorch's edge and
XNNPACK passes). On a 2-core machine that is most of a command's time, so the two
choices here are about speed, not about what is computed:

* :func:`export_deploy` traces **non-strict**. DoTCoM's forward has no Python side
  effects a strict (TorchDynamo) trace would catch: both give the same graph (the model
  tests still check that every variant passes strict export), but the strict trace of
  DoTCoM-Tiny took 16 s against 4 s.
* :func:`lean_provenance` stops node provenance from being deep-copied pass after pass.
  Each pass that re-creates a node records where it came from (``meta["from_node"]``,
  a chain of :class:`torch.fx.traceback.NodeSource`) by *deep-copying* the whole chain
  so far, so the cost of a pass grows with the number of passes before it. The records
  are never mutated once made, so sharing them instead of copying them keeps every
  chain as it would be, for a tenth less lowering time (DoTCoM-Tiny fp32: 80 -> 70 s).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def lean_provenance() -> Iterator[None]:
    """Within the block, ``copy.deepcopy`` of a ``NodeSource`` returns the same object.

    Restores the class as it was on exit; nests. A torch without ``NodeSource`` is
    left alone.
    """
    node_source = getattr(torch.fx.traceback, "NodeSource", None)
    if node_source is None:  # pragma: no cover - older torch
        yield
        return
    missing = object()
    before = node_source.__dict__.get("__deepcopy__", missing)
    node_source.__deepcopy__ = lambda self, memo: self
    try:
        yield
    finally:
        if before is missing:
            del node_source.__deepcopy__
        else:
            node_source.__deepcopy__ = before


def export_deploy(model: torch.nn.Module, example: torch.Tensor, *,
                  dynamic_batch: bool = False) -> torch.export.ExportedProgram:
    """Non-strict ``torch.export`` of a deployment-form ``model`` at ``example``'s shape.

    ``dynamic_batch`` makes dimension 0 symbolic (1..1024), so one captured graph can
    calibrate, evaluate and fine-tune batched; a graph that specialises the batch falls
    back to a static export at batch 1.
    """
    if not dynamic_batch:
        return torch.export.export(model, (example,), strict=False)
    batch = torch.export.Dim("batch", min=1, max=1024)
    example = example if example.shape[0] > 1 else example.expand(2, *example.shape[1:]).contiguous()
    try:
        return torch.export.export(model, (example,), dynamic_shapes=({0: batch},), strict=False)
    except Exception:  # some graphs specialise the batch; fall back to a static one
        return torch.export.export(model, (example[:1],), strict=False)

