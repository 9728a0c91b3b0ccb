"""A disk cache of the Core ML quantizer's traced pattern graphs.

``CoreMLQuantizer.annotate`` traces every pattern it matches (conv/linear x batch norm x
17 activations, binary ops x activations: 405 small modules) through ``torch.export`` the
first time a process quantizes: about 90 s on 2 cores before the first calibration image
(AMD EPYC Zen 3). A traced pattern depends only on the pattern's code, what it closes over,
its example inputs' shapes and the library versions, so it is written once under
``<cache>/coreml-patterns/`` and read back by every later process in milliseconds.

A pattern graph is plain: placeholders, ``aten`` calls whose arguments are nodes or
literals, one output, and the pytree specs that name the outputs (the matcher reads those
names). That is what is stored, as JSON; a pattern with anything else (parameters, a
closure over an object without a stable name, a non-``aten`` call) is not cached and is
traced as before. A cache file that cannot be read is traced again and rewritten.

The folder is ``$DOTCOM_MOBILE_CACHE`` (empty: no disk cache), else
``$XDG_CACHE_HOME/dotcom-mobile``, else ``~/.cache/dotcom-mobile``.

The package also ships the 405 patterns of the pinned stack (``coreml_patterns.json.gz``,
28 KB: the graphs are small and alike), read when the folder has no entry, so the first
Core ML quantization on a machine costs no tracing either. Its entries are keyed like the
folder's (code, closure, shapes, versions), so with other library versions they are simply
not found. :func:`write_seed` writes it again.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import json
import os
import sys
import tempfile
import types
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import fx

FORMAT = 1


class Uncacheable(Exception):
    """The pattern (or its graph) has something this cache does not store."""


def cache_dir() -> Path | None:
    """Where traced patterns live; ``None`` when ``DOTCOM_MOBILE_CACHE`` is set empty."""
    env = os.environ.get("DOTCOM_MOBILE_CACHE")
    if env is not None:
        return Path(env) / "coreml-patterns" if env else None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dotcom-mobile" / "coreml-patterns"


SEED = Path(__file__).with_name("coreml_patterns.json.gz")


def versions() -> list[str]:
    """What a traced pattern depends on besides its own code: Python's bytecode and the libraries.

    A local version label (torch's ``+cu130``, ``+cpu``) is left out: it names a build of
    the same source, which traces the same graphs.
    """
    out = [f"python={sys.version_info.major}.{sys.version_info.minor}"]
    for dist in ("torch", "torchao", "executorch"):
        try:
            out.append(f"{dist}={metadata.version(dist).split('+')[0]}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist}=?")
    return out


def _describe(value: Any) -> str:
    """A stable name for what a pattern closes over: a literal, or a function's module path."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if callable(value) and module and qualname:
        return f"{module}.{qualname}"
    raise Uncacheable(f"closure over a {type(value).__name__}")


def _const(value: Any) -> str:
    if isinstance(value, types.CodeType):
        return _code(value)
    if isinstance(value, (frozenset, set)):  # repr order follows string hashing, which varies per process
        return "{" + ",".join(sorted(_const(v) for v in value)) + "}"
    if isinstance(value, tuple):
        return "(" + ",".join(_const(v) for v in value) + ")"
    return repr(value)


def _code(code: types.CodeType) -> str:
    """The code's identity, the same in every process (``marshal.dumps`` is not: its reference
    flags follow reference counts, and measured keys of the same pattern then differed) and in
    every install: not its file's path, which names the virtual environment (the pattern's
    module is in the key instead)."""
    return "|".join([code.co_qualname, str(code.co_firstlineno), code.co_code.hex(),
                     repr(code.co_names), repr(code.co_varnames), repr(code.co_freevars),
                     *(_const(c) for c in code.co_consts)])


def pattern_key(pattern: torch.nn.Module, example_inputs: tuple, is_cuda: bool) -> str:
    """sha256 of the pattern's ``forward`` code, its closure, its inputs' shapes and the versions."""
    if any(True for _ in pattern.parameters()) or any(True for _ in pattern.buffers()):
        raise Uncacheable("a pattern with tensors of its own")
    forward = type(pattern).forward
    h = hashlib.sha256()
    for part in (str(FORMAT), *versions(), str(is_cuda), type(pattern).__module__,
                 *(_describe(c.cell_contents) for c in forward.__closure__ or ()),
                 *(f"{tuple(t.shape)}:{t.dtype}" for t in example_inputs), _code(forward.__code__)):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


# --------------------------------------------------------------------------- graph <-> JSON


def _encode(value: Any) -> Any:
    if isinstance(value, fx.Node):
        return {"n": value.name}
    if isinstance(value, tuple):
        return {"t": [_encode(v) for v in value]}
    if isinstance(value, list):
        return {"l": [_encode(v) for v in value]}
    if isinstance(value, dict):
        return {"d": {str(k): _encode(v) for k, v in value.items()}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise Uncacheable(f"an argument of type {type(value).__name__}")


def _decode(value: Any, env: dict[str, fx.Node]) -> Any:
    if isinstance(value, dict):
        (tag, inner), = value.items()
        if tag == "n":
            return env[inner]
        if tag == "t":
            return tuple(_decode(v, env) for v in inner)
        if tag == "l":
            return [_decode(v, env) for v in inner]
        if tag == "d":
            return {k: _decode(v, env) for k, v in inner.items()}
        raise ValueError(f"unknown tag {tag!r}")
    return value


def encode_graph(gm: fx.GraphModule) -> dict[str, Any]:
    """The pattern graph as JSON-able data (nodes in order, the pytree specs)."""
    from torch.fx.graph import _PyTreeCodeGen
    from torch.utils._pytree import treespec_dumps

    codegen = gm.graph._codegen
    if not isinstance(codegen, _PyTreeCodeGen):
        raise Uncacheable("a graph without pytree specs")
    nodes = []
    for n in gm.graph.nodes:
        if n.op in ("placeholder", "output"):
            target = n.target
        elif n.op == "call_function" and isinstance(n.target, torch._ops.OpOverload):
            target = str(n.target)  # "aten.conv2d.default"
        else:
            raise Uncacheable(f"a {n.op} node ({n.target})")
        nodes.append({"op": n.op, "name": n.name, "target": target, "args": _encode(n.args),
                      "kwargs": _encode(dict(n.kwargs))})
    info = codegen.pytree_info
    return {"format": FORMAT, "nodes": nodes, "orig_args": list(info.orig_args),
            "in_spec": treespec_dumps(info.in_spec),
            "out_spec": None if info.out_spec is None else treespec_dumps(info.out_spec)}


def _op(name: str) -> torch._ops.OpOverload:
    namespace, op, overload = name.split(".")
    return getattr(getattr(getattr(torch.ops, namespace), op), overload)


def decode_graph(data: dict[str, Any]) -> fx.GraphModule:
    """The inverse of :func:`encode_graph`."""
    from torch.fx.graph import _PyTreeCodeGen, _PyTreeInfo
    from torch.utils._pytree import treespec_loads

    if data.get("format") != FORMAT:
        raise ValueError(f"cache format {data.get('format')!r}, expected {FORMAT}")
    graph = fx.Graph()
    env: dict[str, fx.Node] = {}
    for spec in data["nodes"]:
        target = _op(spec["target"]) if spec["op"] == "call_function" else spec["target"]
        env[spec["name"]] = graph.create_node(spec["op"], target, _decode(spec["args"], env),
                                              _decode(spec["kwargs"], env), name=spec["name"])
    out_spec = data["out_spec"]
    graph._codegen = _PyTreeCodeGen(_PyTreeInfo(data["orig_args"], treespec_loads(data["in_spec"]),
                                                None if out_spec is None else treespec_loads(out_spec)))
    return fx.GraphModule(torch.nn.Module(), graph)


# --------------------------------------------------------------------------- the files


_use_seed = True


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    try:
        with gzip.open(SEED, "rt", encoding="utf-8") as fh:
            patterns = json.load(fh)["patterns"]
        return patterns if isinstance(patterns, dict) else {}
    except Exception:  # noqa: BLE001 - the seed only saves time: without it patterns are traced
        return {}


def _seed() -> dict[str, Any]:
    """The shipped patterns by key; empty when the file is missing or does not read."""
    return _shipped() if _use_seed else {}


def load(key: str) -> fx.GraphModule | None:
    """The cached pattern graph (the folder's, else the shipped one), or ``None``: trace it."""
    folder = cache_dir()
    for read in (lambda: json.loads((folder / f"{key}.json").read_text()) if folder else None,
                 lambda: _seed().get(key)):
        try:
            data = read()
            if data is not None:
                return decode_graph(data)
        except Exception:  # noqa: BLE001 - a miss, or a stale or damaged entry: traced again and overwritten
            pass
    return None


def store(key: str, gm: fx.GraphModule) -> None:
    """Writes the pattern graph (through a temporary and a rename); a cache that cannot be written is skipped."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        text = json.dumps(encode_graph(gm))
    except Uncacheable:
        return
    tmp: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, folder / f"{key}.json")
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# --------------------------------------------------------------------------- the shipped seed


WRITE_SEED = ("python -c \"from dotcom_mobile.quantize import backends, pattern_cache; "
              "pattern_cache.write_seed(backends.make_quantizer('coreml'))\"")


def write_seed(quantizer: Any, path: Path = SEED) -> int:
    """Traces every pattern of the Core ML ``quantizer`` (``backends.make_quantizer('coreml')``,
    whose pattern hook writes the folder) in one ``prepare`` of a toy model, with an empty
    folder and no seed, and packs them into ``path``; returns how many. A maintainer's step
    after a library upgrade (:data:`WRITE_SEED`), in a fresh process: patterns a process has
    already traced are served from its memory."""
    global _use_seed
    from torch import nn
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.SiLU()).eval()
    example = (torch.randn(1, 3, 8, 8),)
    with tempfile.TemporaryDirectory() as tmp:
        saved = os.environ.get("DOTCOM_MOBILE_CACHE")
        os.environ["DOTCOM_MOBILE_CACHE"], _use_seed = tmp, False
        try:
            prepare_pt2e(torch.export.export(model, example).module(), quantizer)
        finally:
            _use_seed = True
            if saved is None:
                del os.environ["DOTCOM_MOBILE_CACHE"]
            else:
                os.environ["DOTCOM_MOBILE_CACHE"] = saved
        files = sorted((Path(tmp) / "coreml-patterns").glob("*.json"))
        doc = {"format": FORMAT, "versions": versions(),
               "patterns": {f.stem: json.loads(f.read_text()) for f in files}}
    _pack(doc, path)
    return len(doc["patterns"])


def _pack(doc: dict[str, Any], path: Path) -> None:
    """Writes ``doc`` gzipped, through a temporary and a rename; no name or time in the gzip
    header, so the same patterns give the same bytes (a regenerated file shows no diff)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fh:
        fh.write(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    os.replace(tmp, path)

