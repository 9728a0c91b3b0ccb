"""Run one in-process benchmark (Python runtime, eager, ONNX Runtime) in a fresh process.

Why: a report's ``peak_memory_bytes`` must be what the *runner* needed. Measured
inside a long-lived process (``dotcom-mobile demo`` has just quantized and lowered
a model) the resident set still holds gigabytes that the allocator keeps after
export, and resetting the kernel's high-water mark (``clear_refs``) only resets it
to that inflated current RSS. A child process that imports the runtime, loads the
artifact and runs the protocol has a peak that belongs to this run alone; the
report also records the RSS just before loading (interpreter + libraries), so the
model's own share is ``peak - before``. The native runner is its own process already.

The parent sends a JSON request (runner function, arguments) in a temp file and
reads the report back from another; a user error in the child (a truncated .pte)
comes back as the same one-line :class:`DotcomError`, a child killed by a signal (the
runtime aborting on a damaged delegate payload) as one line naming the artifact and
the signal, a bug as a RuntimeError with the child's traceback tail.

Cost: one interpreter start plus ``import torch`` per benchmark (about 2-4 s here).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from dotcom_mobile.model.errors import DotcomError

# Runner functions a child may call (``dotcom_mobile.bench.runners.<name>``).
ALLOWED = ("run_python", "run_python_in_turn", "run_eager", "run_onnxruntime")
_SPEC = "__model_spec__"


def _encode(value: Any) -> Any:
    from .runners import ModelSpec

    if isinstance(value, ModelSpec):
        return {_SPEC: {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(value).items()}}
    if isinstance(value, Path):
        return str(value)
    return value


def _encode_all(value: Any) -> Any:
    return [_encode(v) for v in value] if isinstance(value, (list, tuple)) and not isinstance(value, str) else _encode(value)


def _decode(value: Any) -> Any:
    from .runners import ModelSpec

    if isinstance(value, dict) and _SPEC in value:
        fields = dict(value[_SPEC])
        fields["input_shape"] = tuple(fields["input_shape"])
        return ModelSpec(**fields)
    return value


def run_isolated(func: str, *args: Any, **kwargs: Any) -> Any:
    """``runners.<func>(*args, **kwargs)`` in a fresh interpreter; returns its report (or reports).

    The report's memory fields come from the child, so they describe a process that
    did nothing but this benchmark (``results.memory_scope == "process"``); programs
    timed in turn share theirs (``in_process``: each peak holds all of them).
    """
    if func not in ALLOWED:
        raise ValueError(f"{func!r} cannot run isolated (one of {', '.join(ALLOWED)})")
    request = {"func": func, "args": [_encode_all(a) for a in args],
               "kwargs": {k: _encode_all(v) for k, v in kwargs.items()}}
    with tempfile.TemporaryDirectory(prefix="dotcom-bench-") as tmp:
        req, res = Path(tmp) / "request.json", Path(tmp) / "result.json"
        req.write_text(json.dumps(request))
        proc = subprocess.run([sys.executable, "-m", "dotcom_mobile.bench.isolate", str(req), str(res)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        answer = json.loads(res.read_text()) if res.is_file() else None
    if answer is not None and "error" in answer:
        raise DotcomError(answer["error"])
    if proc.returncode < 0:  # killed by a signal: the runtime crashed on this input, one line says so
        from dotcom_mobile.export.pte import crash_line

        subject, runtime = _crash_subject(func, args)
        raise DotcomError(crash_line(subject, proc.returncode, runtime=runtime))
    if proc.returncode != 0 or answer is None:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"isolated benchmark {func} exited with {proc.returncode}:\n{tail}")
    return answer["report"]


def _crash_subject(func: str, args: tuple[Any, ...]) -> tuple[str, str]:
    """(what crashed, whose code) for the one-line message about a child killed by a signal."""
    first = args[0] if args else None
    if func == "run_python":
        return str(first), "the ExecuTorch runtime"
    if func == "run_python_in_turn":
        return ", ".join(str(p) for p in first or ()), "the ExecuTorch runtime"
    name = (first.pt2 or f"{first.model} {func.removeprefix('run_')} baseline") if first is not None else func
    return str(name), "PyTorch" if func == "run_eager" else "ONNX Runtime"


def _child(request_path: str, result_path: str) -> int:
    from dotcom_mobile.export.noise import quiet_known_noise

    quiet_known_noise()  # before torch/torchao load: the parent's -v decides, through the environment
    from . import runners

    request = json.loads(Path(request_path).read_text())
    func = request["func"]
    if func not in ALLOWED:
        raise ValueError(f"{func!r} is not an isolated runner")
    args = [_decode(a) for a in request["args"]]
    kwargs = {k: _decode(v) for k, v in request["kwargs"].items()}
    try:
        result = getattr(runners, func)(*args, **kwargs)
    except DotcomError as e:
        answer: dict[str, Any] = {"error": str(e)}
    else:
        from dotcom_mobile.report.latency import validate_report

        reports = result if isinstance(result, list) else [result]
        for report in reports:
            res = report.get("results")
            if res is not None and len(reports) == 1:
                res["memory_scope"] = "process"
        checked = [validate_report(r, source=f"isolated {func} report") for r in reports]
        answer = {"report": checked if isinstance(result, list) else checked[0]}
    tmp = Path(result_path).with_suffix(".tmp")
    tmp.write_text(json.dumps(answer))
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], sys.argv[2]))
