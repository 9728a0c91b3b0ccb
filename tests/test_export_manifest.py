"""The manifest schema and helpers, without lowering anything."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from dotcom_mobile.export.manifest import (
    build_manifest, manifest_path_for, schema, sha256_path, validate_manifest, write_manifest,
)
from dotcom_mobile.export.targets import TARGETS, resolve_targets
from dotcom_mobile.model import DotcomError, PreprocessConfig


@pytest.fixture()
def manifest(tmp_path):
    art = tmp_path / "dotcom_tiny_xnnpack_fp32.pte"
    art.write_bytes(b"\x00program bytes")
    meta = {"model": "dotcom_tiny", "task": "classify", "num_classes": 2, "class_names": ["cat", "dog"],
            "preprocess": PreprocessConfig()}
    return build_manifest(
        artifact=art, meta=meta, input_shape=(1, 3, 224, 224), backend="xnnpack", quantization="fp32",
        outputs=[{"name": "logits", "shape": [1, 2], "kind": "logits"}],
        delegation={"delegated_nodes": 9, "total_nodes": 10, "fraction": 0.9, "partitions": 1,
                    "non_delegated_ops": {"getitem": 1}})


def test_build_hashes_the_file_and_resizes_preprocessing(manifest, tmp_path):
    data = (tmp_path / "dotcom_tiny_xnnpack_fp32.pte").read_bytes()
    assert manifest["artifact"] == {"file": "dotcom_tiny_xnnpack_fp32.pte", "format": "pte",
                                    "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert manifest["preprocessing"]["crop"] == [224, 224] and manifest["preprocessing"]["resize"] == 252
    assert manifest["input"]["shape"] == [1, 3, 224, 224]


def test_write_is_valid_json_beside_the_artifact(manifest, tmp_path):
    path = write_manifest(manifest, manifest_path_for(tmp_path / "dotcom_tiny_xnnpack_fp32.pte"))
    assert path == tmp_path / "dotcom_tiny_xnnpack_fp32.json"
    assert validate_manifest(path) == json.loads(path.read_text()) == manifest
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("mutate, field", [
    (lambda m: m.pop("labels"), "labels"),
    (lambda m: m["artifact"].update(sha256="xyz"), "artifact/sha256"),
    (lambda m: m.update(backend="tpu"), "backend"),
    (lambda m: m["input"].update(layout="NHWC"), "input/layout"),
    (lambda m: m["delegation"].update(fraction=1.5), "delegation/fraction"),
    (lambda m: m.update(labels=["cat"]), "labels"),
])
def test_invalid_manifests_name_the_field(manifest, mutate, field):
    bad = copy.deepcopy(manifest)
    mutate(bad)
    with pytest.raises(DotcomError, match=field.split("/")[0]):
        validate_manifest(bad)


def test_folder_hash_depends_on_names_and_contents(tmp_path):
    pkg = tmp_path / "m.mlpackage"
    (pkg / "Data").mkdir(parents=True)
    (pkg / "Data" / "w.bin").write_bytes(b"abc")
    (pkg / "Manifest.json").write_text("{}")
    digest, size = sha256_path(pkg)
    assert size == 5
    (pkg / "Data" / "w.bin").write_bytes(b"abd")
    assert sha256_path(pkg)[0] != digest


def test_schema_keeps_what_the_apps_parse():
    props = schema()["properties"]
    for key in ("artifact", "model", "task", "input", "preprocessing", "outputs", "labels", "backend",
                "compute_unit", "quantization", "delegation", "bundled", "versions"):
        assert key in props
    assert set(TARGETS) <= set(props["backend"]["enum"])


def test_all_lists_only_available_targets(monkeypatch):
    monkeypatch.delenv("QNN_SDK_ROOT", raising=False)
    assert [t.name for t in resolve_targets("all")] == ["xnnpack", "coreml", "vulkan", "mlpackage"]
    assert [t.name for t in resolve_targets("all", quantized_backend="xnnpack")] == ["xnnpack"]
    assert [t.name for t in resolve_targets("all", quantized_backend="coreml")] == ["coreml", "mlpackage"]
