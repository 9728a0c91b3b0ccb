"""What ``dotcom-mobile report`` reads: reports, accuracy files and minibench results, mixed.

Files are classified by their content, not their names; inputs are never modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from dotcom_mobile.model.errors import DotcomError

from .latency import read_json, validate_report
from .minibench import convert_minibench, is_minibench


@dataclass
class Inputs:
    """What ``report`` found: latency reports, accuracy records and files it skipped."""

    reports: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    accuracy: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    invalid: list[tuple[Path, str]] = field(default_factory=list)


ACCURACY_KEYS = ("top1",)


def _classify(path: Path, data: Any) -> str:
    if isinstance(data, dict):
        if data.get("schema") == "latency-report" or {"artifact", "results", "runtime"} <= set(data):
            return "report"
        if data.get("kind") == "accuracy":
            return "accuracy"
        if data.get("schema") == "dotcom-mobile/manifest":
            return "manifest"
    if is_minibench(data):
        return "minibench"
    return "other"


def _validate_accuracy(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    for key in ACCURACY_KEYS:
        if not isinstance(data.get(key), (int, float)):
            raise DotcomError(f"{path}: field {key}: expected a number in an accuracy file")
    return data


def collect_inputs(paths: Iterable[str | Path]) -> Inputs:
    """Read every report, accuracy JSON and minibench file named or found in folders.

    Files named explicitly must be one of those kinds. In a folder, other JSON files
    (manifests beside artifacts, quantization reports) are skipped and listed. A file
    that claims to be a report but does not validate lands in ``invalid`` with its
    one-line reason; nothing is modified.
    """
    out = Inputs()
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            files, explicit = sorted(p for p in root.rglob("*.json") if p.is_file()), False
        elif root.is_file():
            files, explicit = [root], True
        else:
            raise DotcomError(f"{root}: no such file or directory")
        for f in files:
            try:
                data = read_json(f)
            except DotcomError as e:
                out.invalid.append((f, str(e)))
                continue
            kind = _classify(f, data)
            try:
                if kind == "report":
                    out.reports.append((f, validate_report(data, source=str(f))))
                elif kind == "minibench":
                    out.reports.extend((f, r) for r in convert_minibench(f))
                elif kind == "accuracy":
                    out.accuracy.append((f, _validate_accuracy(f, data)))
                elif explicit:
                    raise DotcomError(f"{f}: field <root>: not a latency report, accuracy JSON or minibench benchmark_results.json")
                else:
                    out.skipped.append((f, kind))
            except DotcomError as e:
                out.invalid.append((f, str(e)))
    return out
