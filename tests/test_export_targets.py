"""Core ML, Vulkan and .mlpackage exports of the trained Tiny (64x64). Their backends
cannot run on this machine: the .pte must load as a program and carry the backend's
payload in one partition; the .mlpackage's spec must have the named input, the
classifier outputs and an op list that is the whole network."""

from __future__ import annotations

import pytest
import torch

from dotcom_mobile.export.api import export_model, program_backends
from dotcom_mobile.export.manifest import sha256_path, validate_manifest

pytestmark = pytest.mark.slow

BACKEND_ID = {"coreml": "CoreMLBackend", "vulkan": "VulkanBackend"}


@pytest.fixture(scope="module", params=["coreml", "vulkan"])
def delegated(request, tmp_path_factory, trained_tiny):
    out = tmp_path_factory.mktemp(request.param)
    (result,) = export_model(checkpoint=trained_tiny, target=request.param, out_dir=out, progress=False)
    return request.param, result


@pytest.fixture(scope="module")
def mlpackage(tmp_path_factory, trained_tiny):
    (result,) = export_model(checkpoint=trained_tiny, target="mlpackage", out_dir=tmp_path_factory.mktemp("mlp"),
                             compute_unit="CPU_AND_NE", progress=False)
    return result


def test_delegated_program_loads_with_its_payload(delegated):
    from executorch.runtime import Runtime

    target, result = delegated
    quant = {"coreml": "fp16", "vulkan": "fp32"}[target]
    assert result.path.name == f"dotcom_tiny_{target}_{quant}.pte"
    program = Runtime.get().load_program(result.path)
    assert "forward" in program.method_names
    assert program_backends(result.path) == [BACKEND_ID[target]]
    m = validate_manifest(result.manifest_path)
    assert (m["artifact"]["sha256"], m["artifact"]["size_bytes"]) == sha256_path(result.path)
    assert m["backend"] == target and m["quantization"] == quant
    assert m["compute_unit"] == ("ALL" if target == "coreml" else None)
    d = m["delegation"]
    assert d["partitions"] == 1 and d["fraction"] >= 0.98, d


def test_mlpackage_spec(mlpackage, trained_tiny):
    import coremltools as ct

    assert mlpackage.path.name == "dotcom_tiny_mlpackage_fp16.mlpackage" and mlpackage.path.is_dir()
    m = validate_manifest(mlpackage.manifest_path)
    assert (m["artifact"]["sha256"], m["artifact"]["size_bytes"]) == sha256_path(mlpackage.path)
    assert m["compute_unit"] == "CPU_AND_NE" and m["delegation"] is None
    spec = ct.utils.load_spec(str(mlpackage.path))
    (inp,) = spec.description.input
    assert inp.name == m["input"]["name"] == "image"
    assert list(inp.type.multiArrayType.shape) == [1, 3, 64, 64]
    assert "mean" in spec.description.input[0].shortDescription
    assert inp.type.multiArrayType.dataType == ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32
    outs = {o.name for o in spec.description.output}
    assert outs == {"classLabel", "probabilities"} and spec.description.predictedFeatureName == "classLabel"
    assert spec.description.predictedProbabilitiesName == "probabilities" == m["outputs"][0]["name"]
    assert spec.WhichOneof("Type") == "mlProgram" and spec.specificationVersion >= 8  # iOS 17
    ops = m["mlpackage"]["ops"]  # read from the saved spec: the whole network is in the ML program
    assert ops.get("conv", 0) >= 40 and ops.get("layer_norm", 0) >= 1 and "classify" in ops
    assert m["labels"] == torch.load(trained_tiny, weights_only=True)["class_names"]
