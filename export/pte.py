"""What a .pte is: the checks a file passes before any ExecuTorch runtime is handed it.

Why in Python, in the calling process, before the runtime: ExecuTorch's pybindings
forward the runtime's log to ``sys.stderr`` through pybind11, which decodes every
line as UTF-8. A log line that quotes bytes of a bad file (the file identifier of a
random blob, an operator name or a delegate id from a damaged program) raises inside
that C++ logger and the process dies with SIGABRT (``terminate called after throwing
an instance of 'pybind11::error_already_set'``). So nothing the runtime would quote
reaches it unchecked:

1. the path is a readable file (:func:`dotcom_mobile.model.files.require_file`);
2. the flatbuffer file identifier at byte 4 is ``ET12`` (a program) or ``BP08`` (a
   bundled program, whose inner program is then checked the same way);
3. the extended header (``eh00``), when present, fits the file: a truncated download
   is named as such;
4. ExecuTorch's own verification (``Verification.InternalConsistency``: the flatbuffer
   verifier plus the program's internal offsets) accepts it, with the runtime's log
   captured so its reason becomes part of the one-line message;
5. every name the runtime may quote later (method names, operator names and
   overloads, delegate ids) is UTF-8 text; a consumer that runs the program here also
   learns up front when a delegate (Core ML, Vulkan) does not exist in this runtime.

What this cannot see is inside a delegate's payload (an XNNPACK graph with damaged
bytes); loading that can still abort. Runners therefore load programs in a child
process (``bench``) or probe first (:func:`probe_load`, for ``eval``), and
:func:`crash_line` turns the child's signal into one line naming the artifact.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from dotcom_mobile.model.errors import DotcomError
from dotcom_mobile.model.files import require_file

PROGRAM_IDENTIFIER = b"ET12"  # schema/program.fbs: file_identifier
BUNDLED_IDENTIFIER = b"BP08"  # devtools/bundled_program/schema/bundled_program_schema.fbs
EXTENDED_HEADER_MAGIC = b"eh00"  # exir/_serialize/_program.py: _ExtendedHeader
SUFFIXES = (".pte", ".bpte")
_MIN_SIZE = 16  # root offset, identifier, and at least a vtable's worth


@dataclass(frozen=True)
class ProgramInfo:
    """A program that passed :func:`check_program`: its methods and the delegates it calls."""

    path: Path
    bundled: bool
    size_bytes: int
    methods: tuple[str, ...]
    backends: tuple[str, ...]


# --------------------------------------------------------------------------- the runtime's log


@contextlib.contextmanager
def native_log() -> Iterator[list[str]]:
    """Capture ExecuTorch's log: the pybindings route it to ``sys.stderr``, C++ code
    outside them writes to fd 2 directly, so both are redirected.

    On success the chatter (cpuinfo probing, thread-pool resets) is dropped; on failure
    its last line is the only place that says *why* a program did not load.
    """
    import io

    lines: list[str] = []
    py_err = io.StringIO()
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (embedded interpreters): the Python-level log only
        with contextlib.redirect_stderr(py_err):
            yield lines
        lines.extend(py_err.getvalue().splitlines())
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            with contextlib.redirect_stderr(py_err):
                yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode(errors="replace").splitlines())
            lines.extend(py_err.getvalue().splitlines())


def log_reason(lines: list[str]) -> str:
    """The most telling native log line: ExecuTorch prefixes them with ``[file.cpp:NN]``."""
    useful = [ln.split("] ", 1)[-1].strip() for ln in lines if ln.strip() and "cpuinfo" not in ln and "threadpool" not in ln]
    return useful[-1] if useful else ""


class RuntimeCall:
    """What :func:`runtime_call` saw: the exception it held back and the log's telling line."""

    error: Exception | None = None
    reason: str = ""


@contextlib.contextmanager
def runtime_call() -> Iterator[RuntimeCall]:
    """Run ExecuTorch code with its log captured (:func:`native_log`), holding back any exception.

    The log is complete only once the capture has ended, and the one-line message a
    caller raises needs its last line: so the exception is kept in ``call.error`` and
    ``call.reason`` is filled on exit, for the caller to raise from outside the block.
    """
    call = RuntimeCall()
    with native_log() as log:
        try:
            yield call
        except Exception as e:  # noqa: BLE001 - the runtime raises RuntimeError/ValueError with a hex code
            call.error = e
    call.reason = log_reason(log)


# --------------------------------------------------------------------------- flatbuffers


class _Corrupt(ValueError):
    pass


class _Flat:
    """Just enough of a flatbuffer reader for names and nested blobs, bounds-checked.

    (The generated ``executorch_flatbuffer`` Python classes are not importable as
    shipped, and the serializer's path shells out to ``flatc``.)
    """

    def __init__(self, data: bytes) -> None:
        self.data = data

    def _int(self, pos: int, size: int, signed: bool = False) -> int:
        if pos < 0 or pos + size > len(self.data):
            raise _Corrupt(f"offset {pos} is outside the file")
        return int.from_bytes(self.data[pos:pos + size], "little", signed=signed)

    def root(self) -> int:
        return self._int(0, 4)

    def field(self, table: int, index: int) -> int | None:
        vtable = table - self._int(table, 4, signed=True)
        size = self._int(vtable, 2)
        slot = 4 + 2 * index
        if slot + 2 > size:
            return None
        rel = self._int(vtable + slot, 2)
        return table + rel if rel else None

    def vector(self, table: int, index: int) -> tuple[int, int]:
        """(start, length) of a vector field; (0, 0) when absent."""
        pos = self.field(table, index)
        if pos is None:
            return 0, 0
        vec = pos + self._int(pos, 4)
        n = self._int(vec, 4)
        if vec + 4 + n > len(self.data):
            raise _Corrupt(f"a vector of {n} at {vec} runs past the end")
        return vec + 4, n

    def tables(self, table: int, index: int) -> list[int]:
        start, n = self.vector(table, index)
        if start + 4 * n > len(self.data):
            raise _Corrupt("a table vector runs past the end")
        return [start + 4 * i + self._int(start + 4 * i, 4) for i in range(n)]

    def string(self, table: int, index: int) -> bytes | None:
        pos = self.field(table, index)
        if pos is None:
            return None
        start = pos + self._int(pos, 4)
        n = self._int(start, 4)
        if start + 4 + n > len(self.data):
            raise _Corrupt("a string runs past the end")
        return self.data[start + 4:start + 4 + n]


# Field indices (vtable slot = 4 + 2 * index) from schema/program.fbs.
_PROGRAM_EXECUTION_PLAN = 1
_PLAN_NAME, _PLAN_OPERATORS, _PLAN_DELEGATES = 0, 6, 7
_OPERATOR_NAME, _OPERATOR_OVERLOAD = 0, 1
_DELEGATE_ID = 0
_BUNDLED_PROGRAM = 2  # bundled_program_schema.fbs: version, method_test_suites, program


# --------------------------------------------------------------------------- checks


def _looks_like(data: bytes) -> str:
    """A hint for a file of another kind (what users actually mix up)."""
    if data[:4] == b"PK\x03\x04":
        return "; it is a zip archive, such as a torch.export .pt2 or a PyTorch checkpoint"
    if data[:8] == b"\x89PNG\r\n\x1a\n" or data[:3] == b"\xff\xd8\xff":
        return "; it is an image"
    if data.lstrip()[:1] in (b"{", b"["):
        return "; it looks like JSON (a manifest or a report?)"
    return ""


def _check_header(data: bytes, name: str) -> None:
    """A complete file: the extended header's sizes must fit in it."""
    if data[8:12] != EXTENDED_HEADER_MAGIC or len(data) < 40:
        return
    length = int.from_bytes(data[12:16], "little")
    program_size = int.from_bytes(data[16:24], "little")
    segment_base = int.from_bytes(data[24:32], "little")
    segment_size = int.from_bytes(data[32:40], "little") if length > 24 else 0
    needed = max(program_size, segment_base + segment_size if segment_base else 0)
    if needed > len(data):
        raise DotcomError(f"{name} is truncated: its header says {needed:,} bytes, the file has {len(data):,}")


def _verify(data: bytes, name: str) -> None:
    """ExecuTorch's own verification of the flatbuffer and its offsets, in this process."""
    from executorch.runtime import Runtime, Verification

    with runtime_call() as call:
        Runtime.get().load_program(data, verification=Verification.InternalConsistency)
    if call.error is not None:
        why = call.reason or str(call.error).strip().splitlines()[0]
        raise DotcomError(f"{name} is not a valid ExecuTorch program (ExecuTorch's verification failed: {why})")


def _text(raw: bytes | None, name: str, what: str) -> str:
    try:
        return (raw or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise DotcomError(f"{name} is corrupt: {what} is not text") from None


def _names(data: bytes, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(method names, delegate ids), every name the runtime may quote checked to be text."""
    fb = _Flat(data)
    methods: list[str] = []
    backends: list[str] = []
    try:
        for i, plan in enumerate(fb.tables(fb.root(), _PROGRAM_EXECUTION_PLAN)):
            method = _text(fb.string(plan, _PLAN_NAME), name, f"the name of method {i}")
            methods.append(method)
            for j, op in enumerate(fb.tables(plan, _PLAN_OPERATORS)):
                _text(fb.string(op, _OPERATOR_NAME), name, f"operator {j} of {method}")
                _text(fb.string(op, _OPERATOR_OVERLOAD), name, f"the overload of operator {j} of {method}")
            for j, delegate in enumerate(fb.tables(plan, _PLAN_DELEGATES)):
                backends.append(_text(fb.string(delegate, _DELEGATE_ID), name, f"delegate {j} of {method}"))
    except _Corrupt as e:
        raise DotcomError(f"{name} is corrupt ({e})") from None
    return tuple(methods), tuple(dict.fromkeys(backends))


def _check_program_bytes(data: bytes, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not data:
        raise DotcomError(f"{name} is not an ExecuTorch program (the file is empty)")
    if len(data) < _MIN_SIZE:
        raise DotcomError(f"{name} is not an ExecuTorch program (only {len(data)} bytes)")
    if data[4:8] != PROGRAM_IDENTIFIER:
        raise DotcomError(f"{name} is not an ExecuTorch program (no {PROGRAM_IDENTIFIER.decode()} file identifier "
                          f"at byte 4{_looks_like(data)})")
    _check_header(data, name)
    _verify(data, name)
    return _names(data, name)


def _bundled_program(data: bytes, name: str) -> bytes:
    """The program inside a bundled program (``BundledProgram.program``)."""
    fb = _Flat(data)
    try:
        start, n = fb.vector(fb.root(), _BUNDLED_PROGRAM)
    except _Corrupt as e:
        raise DotcomError(f"{name} is a corrupt bundled program ({e})") from None
    if not n:
        raise DotcomError(f"{name} is a bundled program without a program inside")
    return data[start:start + n]


def check_program(path: str | os.PathLike[str], *, method: str | None = "forward",
                  runs_here: bool = False) -> ProgramInfo:
    """Everything about ``path`` that can be checked without loading a method; one line if not.

    ``method``: the method the caller will run (None: any program will do).
    ``runs_here``: the caller runs it in this machine's runtime (bench, eval), so every
    delegate must be one this runtime has; a .pte for a phone (Core ML, Vulkan) is
    refused with a line saying where it runs instead.
    """
    p = require_file(path)
    data = p.read_bytes()
    name = str(p)
    bundled = data[4:8] == BUNDLED_IDENTIFIER
    if bundled:
        methods, backends = _check_program_bytes(_bundled_program(data, name), f"{name} (the program in the bundle)")
    else:
        methods, backends = _check_program_bytes(data, name)
    if method is not None and method not in methods:
        raise DotcomError(f"{name} has no {method!r} method (it has: {', '.join(methods) or 'none'})")
    if runs_here:
        from executorch.runtime import Runtime

        registry = Runtime.get().backend_registry
        missing = [b for b in backends if not registry.is_available(b)]
        if missing:
            raise DotcomError(f"{name} delegates to {', '.join(missing)}, which this machine's ExecuTorch runtime "
                              f"does not have (it has {', '.join(registry.registered_backend_names) or 'none'}); "
                              "run it on its device: dotcom-mobile android bench / ios bench")
    return ProgramInfo(p, bundled, len(data), methods, backends)


def program_bytes(path: str | os.PathLike[str]) -> bytes:
    """The program a runtime loads: the file itself, or the one inside a bundled program.

    (ExecuTorch's Python runtime loads only the former; a .bpte's reference inputs are
    for the native runner's and the apps' ``--verify``.)
    """
    data = Path(path).read_bytes()
    return _bundled_program(data, str(path)) if data[4:8] == BUNDLED_IDENTIFIER else data


# --------------------------------------------------------------------------- crashes


def crash_line(subject: str | os.PathLike[str], returncode: int, *, doing: str = "loading or running it",
               runtime: str = "the ExecuTorch runtime") -> str:
    """``<subject>: the ExecuTorch runtime crashed (SIGABRT) while loading or running it``.

    ``returncode`` is a child's negative ``subprocess`` return code (killed by that signal).
    """
    try:
        sig = signal.Signals(-returncode).name
    except ValueError:
        sig = f"signal {-returncode}"
    hint = "; out of memory?" if sig == "SIGKILL" else ""
    return f"{subject}: {runtime} crashed ({sig}{hint}) while {doing}"


def probe_load(path: str | os.PathLike[str], method: str = "forward") -> None:
    """Load ``method`` of a checked program in a fresh interpreter first, for in-process callers.

    A program that crashes the runtime on load (see the module docstring) then costs an
    interpreter start and one line, not the caller's process. A load that merely
    fails is left for the caller, whose own load reports it.
    """
    proc = subprocess.run([sys.executable, "-m", "dotcom_mobile.export.pte", str(path), method],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if proc.returncode < 0:
        raise DotcomError(crash_line(path, proc.returncode, doing="loading it"))


def _probe_child(path: str, method: str) -> int:
    from dotcom_mobile.export.noise import quiet_known_noise

    quiet_known_noise()
    from executorch.runtime import Runtime

    with contextlib.suppress(Exception), native_log():
        Runtime.get().load_program(Path(path)).load_method(method)
    return 0


if __name__ == "__main__":
    sys.exit(_probe_child(sys.argv[1], sys.argv[2]))
