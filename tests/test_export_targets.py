"""Core ML, Vulkan and .mlpackage exports of the trained Tiny (64x64). Their backends
cannot run on this machine: the .pte must load as a program and carry the backend's
payload in one partition, and the payload is opened to check what the device will run
(the Core ML model's ops and input, the Vulkan graph's tensor dtypes); the .mlpackage's
spec must have the named input, the classifier outputs and an op list that is the whole
network. Covers fp16 Core ML, fp32 and --fp16 Vulkan, and Core ML int8 from a
``quantize --backend coreml`` .pt2."""

from __future__ import annotations

import pytest
import torch

from dotcom_mobile.export.api import delegate_payloads, export_model, program_backends
from dotcom_mobile.export.manifest import sha256_path, validate_manifest

pytestmark = pytest.mark.slow

BACKEND_ID = {"coreml": "CoreMLBackend", "vulkan": "VulkanBackend"}


@pytest.fixture(scope="module", params=["coreml", "vulkan"])
def delegated(request, tmp_path_factory, trained_tiny):
    out = tmp_path_factory.mktemp(request.param)
    (result,) = export_model(checkpoint=trained_tiny, target=request.param, out_dir=out, progress=False)
    return request.param, result


@pytest.fixture(scope="module")
def vulkan_fp16(tmp_path_factory, trained_tiny):
    (result,) = export_model(checkpoint=trained_tiny, target="vulkan", fp16=True,
                             out_dir=tmp_path_factory.mktemp("vulkan_fp16"), progress=False)
    return result


@pytest.fixture(scope="module")
def coreml_q8(tiny_coreml_q8):
    """``quantize --backend coreml`` on the trained Tiny (8 shape images), then export --target coreml (conftest)."""
    return tiny_coreml_q8


def coreml_payload_spec(pte, tmp_path):
    """The Core ML model inside a .pte's CoreMLBackend payload, as a coremltools spec."""
    import coremltools as ct
    from executorch.backends.apple.coreml import executorchcoreml

    ((backend, payload),) = delegate_payloads(pte)
    assert backend == "CoreMLBackend"
    folder = tmp_path / "payload"
    folder.mkdir()
    assert executorchcoreml.unflatten_directory_contents(payload, str(folder))
    (package,) = folder.rglob("model.mlpackage")  # under the lowered module's own folder
    return ct.utils.load_spec(str(package))


def program_ops(spec) -> dict[str, int]:
    from dotcom_mobile.export.api import mlpackage_summary

    return mlpackage_summary(spec)["ops"]


def vulkan_tensor_dtypes(pte) -> set[str]:
    """Data types of every tensor in the Vulkan graph inside a .pte (VkDataType names)."""
    from executorch.backends.vulkan.serialization.vulkan_graph_schema import VkDataType, VkTensor
    from executorch.backends.vulkan.serialization.vulkan_graph_serialize import (
        extract_vk_flatbuffer, flatbuffer_to_vk_graph,
    )

    ((backend, payload),) = delegate_payloads(pte)
    assert backend == "VulkanBackend"
    graph = flatbuffer_to_vk_graph(extract_vk_flatbuffer(payload))
    return {VkDataType(int(v.value.datatype)).name for v in graph.values if isinstance(v.value, VkTensor)}


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


def test_delegated_payload_is_the_whole_network(delegated, tmp_path):
    """Core ML: the payload's model takes the [1, 3, 64, 64] image and holds every conv and
    the attention; Vulkan: every tensor of its graph is fp32."""
    target, result = delegated
    if target == "coreml":
        spec = coreml_payload_spec(result.path, tmp_path)
        (inp,) = spec.description.input
        assert list(inp.type.multiArrayType.shape) == [1, 3, 64, 64]
        ops = program_ops(spec)
        assert ops.get("conv", 0) >= 40 and ops.get("layer_norm", 0) >= 1 and ops.get("softmax", 0) >= 1, ops
    else:
        assert vulkan_tensor_dtypes(result.path) == {"FLOAT32"}


def test_vulkan_fp16(vulkan_fp16, tmp_path):
    from executorch.runtime import Runtime

    assert vulkan_fp16.path.name == "dotcom_tiny_vulkan_fp16.pte"
    assert "forward" in Runtime.get().load_program(vulkan_fp16.path).method_names
    assert program_backends(vulkan_fp16.path) == ["VulkanBackend"]
    assert vulkan_tensor_dtypes(vulkan_fp16.path) == {"FLOAT16"}  # weights and activations, not only the name
    m = validate_manifest(vulkan_fp16.manifest_path)
    assert (m["artifact"]["sha256"], m["artifact"]["size_bytes"]) == sha256_path(vulkan_fp16.path)
    assert m["backend"] == "vulkan" and m["quantization"] == "fp16"
    assert m["input"]["dtype"] == "float32"  # the app still hands over float32; the delegate converts
    assert m["delegation"]["partitions"] == 1 and m["delegation"]["fraction"] >= 0.98


def test_coreml_from_coreml_quantized_pt2(coreml_q8, tmp_path):
    from executorch.runtime import Runtime

    pt2, result = coreml_q8
    assert result.path.name == "dotcom_tiny_coreml_q8.pte"
    assert "forward" in Runtime.get().load_program(result.path).method_names
    m = validate_manifest(result.manifest_path)
    assert (m["artifact"]["sha256"], m["artifact"]["size_bytes"]) == sha256_path(result.path)
    assert m["backend"] == "coreml" and m["quantization"] == "q8" and m["compute_unit"] == "ALL"
    assert m["quantization_details"]["quantizer_backend"] == "coreml"
    assert m["source"]["quantized"] == str(pt2)
    d = m["delegation"]
    assert d["partitions"] == 1 and d["fraction"] >= 0.98, d
    # The int8 survives into the Core ML model: int8 weights and quantized activations.
    # (Tiny at 64: 72 conv, 112 constexpr_affine_dequantize, 205 quantize, 228 dequantize.)
    ops = program_ops(coreml_payload_spec(result.path, tmp_path))
    assert ops.get("conv", 0) >= 40, ops
    assert ops.get("constexpr_affine_dequantize", 0) >= 40, ops  # int8 weights, expanded on load
    assert ops.get("quantize", 0) >= 40 and ops.get("dequantize", 0) >= 40, ops  # int8 activations


def test_coreml_q8_pt2_is_refused_by_xnnpack(coreml_q8, tmp_path):
    from dotcom_mobile.model import DotcomError

    pt2, _ = coreml_q8
    with pytest.raises(DotcomError, match="made for coreml, not xnnpack"):
        export_model(quantized=pt2, target="xnnpack", out_dir=tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


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


def test_coremltools_progress_bars_are_silenced_and_restored(capfd):
    """coremltools draws its own tqdm bars (frontend ops, each MIL pass pipeline) under
    export's progress line; export converts inside ``quiet_coremltools``."""
    import coremltools as ct
    import numpy as np

    from dotcom_mobile.export.targets import quiet_coremltools

    ep = torch.export.export(torch.nn.Linear(4, 2).eval(), (torch.zeros(1, 4),)).run_decompositions({})

    def convert() -> str:
        ct.convert(ep, inputs=[ct.TensorType(name="x", shape=(1, 4), dtype=np.float32)], convert_to="mlprogram",
                   minimum_deployment_target=ct.target.iOS17, skip_model_load=True)
        return capfd.readouterr().err

    capfd.readouterr()
    assert "Running MIL" in convert()  # the bars this is about, unpatched
    with quiet_coremltools():
        assert "Running MIL" not in convert() and "MIL Ops" not in convert()
    assert "Running MIL" in convert()  # restored afterwards
