"""The manifest written beside every artifact (``schemas/manifest.v1.schema.json``).

Apps and the benchmark read the manifest instead of guessing: the input tensor, the
preprocessing that produces it from an RGB image, the labels, what the backend took
(delegation), and the artifact's sha256 so a stale manifest is detectable.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("schemas") / "manifest.v1.schema.json"
TOOLS = {"dotcom_mobile": "dotcom-mobile", "torch": "torch", "executorch": "executorch", "torchao": "torchao",
         "coremltools": "coremltools"}


@lru_cache(maxsize=None)
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def tool_versions() -> dict[str, str | None]:
    """Installed versions of the tools that shape an artifact's bytes."""
    out: dict[str, str | None] = {}
    for key, dist in TOOLS.items():
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    return out


def sha256_path(path: str | Path) -> tuple[str, int]:
    """(sha256, size) of a file; of a folder (.mlpackage): of its sorted (path, sha256) list."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file())
        lines = "".join(f"{f.relative_to(p).as_posix()}\t{sha256_path(f)[0]}\n" for f in files)
        return hashlib.sha256(lines.encode()).hexdigest(), sum(f.stat().st_size for f in files)
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest(), p.stat().st_size


def delegation_summary(graph_module: Any) -> dict[str, Any]:
    """Delegated/total nodes, partitions and the ops left to the portable kernels."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    total = info.num_delegated_nodes + info.num_non_delegated_nodes
    return {
        "delegated_nodes": info.num_delegated_nodes,
        "total_nodes": total,
        "fraction": round(info.num_delegated_nodes / total, 4) if total else 0.0,
        "partitions": info.num_delegated_subgraphs,
        "non_delegated_ops": {op: b.non_delegated for op, b in sorted(info.delegation_by_operator.items())
                              if b.non_delegated},
    }


def build_manifest(
    *,
    artifact: str | Path,
    meta: dict[str, Any],
    input_shape: tuple[int, ...],
    outputs: list[dict[str, Any]],
    backend: str,
    quantization: str,
    compute_unit: str | None = None,
    delegation: dict[str, Any] | None = None,
    quantization_details: dict[str, Any] | None = None,
    bundled: dict[str, Any] | None = None,
    etrecord: str | None = None,
    source: dict[str, Any] | None = None,
    mlpackage: dict[str, Any] | None = None,
    input_name: str = "image",
) -> dict[str, Any]:
    """The manifest of a finished artifact (hashes the file, so call it after writing).

    ``meta`` is the model's ``dotcom_meta`` (``preprocess`` a PreprocessConfig); its
    preprocessing is reported at the artifact's input size.
    """
    path = Path(artifact)
    digest, size = sha256_path(path)
    preprocess = meta["preprocess"].with_size(input_shape[-1])
    manifest: dict[str, Any] = {
        "schema": "dotcom-mobile/manifest",
        "schema_version": 1,
        "artifact": {"file": path.name, "format": path.suffix.lstrip("."), "size_bytes": size, "sha256": digest},
        "model": meta["model"],
        "task": meta["task"],
        "num_classes": int(meta["num_classes"]),
        "input": {"name": input_name, "shape": list(input_shape), "layout": "NCHW", "dtype": "float32",
                  "color": "RGB"},
        "preprocessing": preprocess.to_dict(),
        "outputs": outputs,
        "labels": list(meta["class_names"]),
        "backend": backend,
        "compute_unit": compute_unit,
        "quantization": quantization,
        "quantization_details": quantization_details,
        "delegation": delegation,
        "bundled": bundled,
        "etrecord": etrecord,
        "source": source,
        "mlpackage": mlpackage,
        "versions": tool_versions(),
        "created_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    validate_manifest(manifest)
    return manifest


def validate_manifest(manifest: dict[str, Any] | str | Path) -> dict[str, Any]:
    """Validate against the v1 schema (and labels vs num_classes); return the dict.

    Raises :class:`DotcomError` naming the failing field, so a bad manifest handed to
    the CLI ends in one line.
    """
    import jsonschema

    from dotcom_mobile.model.errors import DotcomError

    where = ""
    if not isinstance(manifest, dict):
        where = f"{manifest}: "
        try:
            manifest = json.loads(Path(manifest).read_text())
        except (OSError, ValueError) as e:
            raise DotcomError(f"{where}not a readable manifest ({e})") from None
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema()).iter_errors(manifest))
    if err is not None:
        field = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise DotcomError(f"{where}invalid manifest at {field}: {err.message}")
    if len(manifest["labels"]) != manifest["num_classes"]:
        raise DotcomError(f"{where}invalid manifest: {len(manifest['labels'])} labels for "
                          f"{manifest['num_classes']} classes")
    return manifest


def manifest_path_for(artifact: str | Path) -> Path:
    """``dotcom_tiny_xnnpack_q8.pte`` -> ``dotcom_tiny_xnnpack_q8.json`` (same folder)."""
    p = Path(artifact)
    return p.with_name(p.name[: -len(p.suffix)] + ".json" if p.suffix else p.name + ".json")


def write_manifest(manifest: dict[str, Any], path: str | Path) -> Path:
    """Validate, then write atomically (a temp file in the same folder, then os.replace)."""
    validate_manifest(manifest)
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(manifest, fh, indent=2)
            fh.write("\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a manifest is as readable as its artifact
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p
