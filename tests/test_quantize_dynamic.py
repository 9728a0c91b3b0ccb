"""``quantize --dynamic`` (XNNPACK): the ``.pte`` runs, computes what the report measured,
and keeps issue 16's accuracy on the trained shapes model and on real scans.

Before this file, a dynamic DoTCoM-Tiny lowered without complaint and failed on its first
``execute`` ("Propagating input shapes failed"); the toy modules below are the two
patterns that did it (ExecuTorch 1.5.1's XNNPACK delegate), each checked against the
``.pte`` it now gives.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dotcom_mobile.export.api import lower, run_program
from dotcom_mobile.export.targets import Options, resolve_targets
from dotcom_mobile.quantize.backends import (
    as_xnnpack_runs_it,
    finish_convert,
    make_quantizer,
    reads_relaid_tensor,
    split_shared_dynamic_quant,
)
from dotcom_mobile.quantize.numerics import sqnr_db


class SharedInput(nn.Module):
    """A QG block's shape: 3x3 conv, SiLU, 3x3 conv, plus a 1x1 shortcut on the same input."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(16, 24, 3, stride, 1)
        self.b = nn.Conv2d(24, 24, 3, 1, 1)
        self.shortcut = nn.Conv2d(16, 24, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        return self.b(y * torch.sigmoid(y)) + self.shortcut(x)


class Refolded(nn.Module):
    """A DoT block's ``conv_out``: a 1x1 conv on tokens permuted back into an image."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(32, 32, 1)
        self.next = nn.Conv2d(32, 32, 3, 1, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, H, W, C]
        return self.next(self.conv((tokens * 2).permute(0, 3, 1, 2)))


class Rows(nn.Module):
    """One layer per kind of XNNPACK dynamic scale: per image (3x3 conv), per pixel (1x1 conv), per token (linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv3 = nn.Conv2d(16, 16, 3, 1, 1)
        self.conv1 = nn.Conv2d(16, 16, 1)
        self.linear = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(self.conv3(x))
        return self.linear(y.flatten(2).transpose(1, 2))


def _dynamic(module: nn.Module, x: torch.Tensor) -> torch.fx.GraphModule:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = make_quantizer("xnnpack", dynamic=True)
    prepared = prepare_pt2e(torch.export.export(module.eval(), (x,)).module(), quantizer)
    prepared(x)
    return finish_convert(convert_pt2e(prepared), quantizer)


def _pte(converted: torch.fx.GraphModule, x: torch.Tensor) -> bytes:
    program, delegation = lower(torch.export.export(converted, (x,)), resolve_targets("xnnpack")[0],
                                Options(quantized=True))
    assert delegation["partitions"] == 1
    return program.buffer


def _uneven(shape: tuple[int, ...]) -> torch.Tensor:
    """Random values whose magnitude spans 3 decades across the rows (so per-row and per-tensor scales differ)."""
    torch.manual_seed(0)
    x = torch.randn(*shape)
    return x * torch.logspace(-2, 1, x[0, 0].numel()).reshape(x.shape[2:])


@pytest.mark.parametrize("stride", [1, 2])
def test_an_input_shared_by_two_dynamic_convs_gets_one_chain_each(stride):
    x = _uneven((1, 16, 16, 16))
    module = SharedInput(stride)
    converted = _dynamic(module, x)
    chains = [n for n in converted.graph.nodes if n.target == torch.ops.quantized_decomposed.choose_qparams.tensor]
    assert len(chains) == 3  # x for a, x for the shortcut, silu(a(x)) for b
    assert split_shared_dynamic_quant(converted) == 0  # finish_convert already split them
    out = run_program(_pte(converted, x), [x])[0]
    with torch.no_grad():
        ref, twin = module(x), as_xnnpack_runs_it(converted)(x)
    # Shared, the .pte failed at stride 2 and read 12 dB against fp32 at stride 1.
    assert sqnr_db(ref, out) >= 30.0
    assert sqnr_db(twin, out) >= 60.0


def test_a_conv_on_a_permuted_tensor_stays_fp32_and_the_pte_runs():
    x = _uneven((1, 8, 8, 32)).permute(0, 2, 1, 3).contiguous()
    module = Refolded()
    converted = _dynamic(module, x)
    convs = [n for n in converted.graph.nodes if n.target == torch.ops.aten.conv2d.default]
    assert [reads_relaid_tensor(c) for c in convs] == [True, False]
    assert [c.args[1].op for c in convs] == ["get_attr", "call_function"]  # fp32 weight, then an int8 one
    out = run_program(_pte(converted, x), [x])[0]
    with torch.no_grad():
        assert sqnr_db(module(x), out) >= 30.0


def test_evaluation_copy_uses_xnnpacks_scales():
    """The report's evaluation copy matches the .pte; PT2E's own per-tensor chain does not."""
    x = _uneven((1, 16, 8, 8))
    module = Rows()
    converted = _dynamic(module, x)
    twin = as_xnnpack_runs_it(converted)
    assert twin is not converted
    out = run_program(_pte(converted, x), [x])[0]
    with torch.no_grad():
        eager, mirrored = converted(x), twin(x)
    assert sqnr_db(mirrored, out) >= 60.0
    assert sqnr_db(eager, out) <= 50.0  # one scale for all rows: measurably another result


def _static(module: nn.Module, x: torch.Tensor) -> torch.fx.GraphModule:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    prepared = prepare_pt2e(torch.export.export(module.eval(), (x,)).module(), make_quantizer("xnnpack"))
    prepared(x)
    return convert_pt2e(prepared)


def test_static_graphs_are_evaluated_as_they_are():
    x = _uneven((1, 16, 8, 8))
    converted = _static(Rows(), x)
    assert as_xnnpack_runs_it(converted) is converted


# --- the trained models -------------------------------------------------------------------


@pytest.fixture(scope="module", params=["shapes", "digits"])
def dynamic_run(request, tmp_path_factory, trained_tiny, trained_digits, shapes_root, digits_root):
    """Dynamic int8 of both trained models: shapes through ``--scheme auto`` (its static SQNR
    is under the floor, so auto takes dynamic), digits with ``--scheme dynamic`` (auto keeps
    static there: 32 dB)."""
    from dotcom_mobile.export.api import export_model
    from dotcom_mobile.quantize.api import quantize_model

    ckpt, root = (trained_tiny, shapes_root) if request.param == "shapes" else (trained_digits, digits_root)
    out = tmp_path_factory.mktemp(f"dyn_{request.param}")
    scheme = "auto" if request.param == "shapes" else "dynamic"
    result = quantize_model("dotcom_tiny", checkpoint=ckpt, backend="xnnpack", calib=root / "train", num_calib=64,
                            val_dir=root / "val", out_dir=out, scheme=scheme, progress=False, per_layer=False)
    (pte,) = export_model(quantized=result.pt2_path, target="xnnpack", out_dir=out, progress=False)
    return request.param, ckpt, root, result, pte


@pytest.mark.slow
def test_dynamic_int8_meets_issue_16_on_both_trained_models(dynamic_run):
    """Issue 16's targets, 30 dB and top-1 within 0.5 point, on the shipped checkpoints with
    64 calibration images. Measured (quantize/README.md): Intel Sapphire Rapids (AVX-512
    VNNI + AMX) shapes 36.3 dB, 97.66 -> 97.66, digits 39.8 dB, 95.82 -> 95.54; the same with
    ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 (other fp32 rounding everywhere)
    36.5 dB and 40.0 dB, the same top-1. The one digits image that flips has a top-2 margin
    of 0.27 (the .pte flips the same one). The static default: 26.2 and 32.1 dB."""
    name, _, _, result, _ = dynamic_run
    ev = result.report["evaluation"]
    assert result.report["quantization_details"]["dynamic"] is True
    assert ev["sqnr_db"] >= 33.0, ev  # 3 dB under the lower of the two (36.3)
    assert ev["int8_top1"] >= ev["fp32_top1"] - 0.005, ev


@pytest.mark.slow
def test_dynamic_pte_runs_and_agrees_with_the_report(dynamic_run):
    from torchvision.datasets import ImageFolder

    from dotcom_mobile.model import PreprocessConfig, create_model
    from dotcom_mobile.quantize.api import load_quantized

    name, ckpt, root, result, pte = dynamic_run
    assert pte.manifest["delegation"]["partitions"] == 1
    ds = ImageFolder(root / "val", transform=PreprocessConfig((3, 64, 64), crop_pct=1.0).transform())
    xs = [ds[i][0].unsqueeze(0) for i in range(0, len(ds), len(ds) // 16)][:16]
    model = create_model("dotcom_tiny", checkpoint=ckpt)
    twin = as_xnnpack_runs_it(load_quantized(result.pt2_path)[0].module())
    with torch.no_grad():
        fp32 = torch.cat([model(x) for x in xs])
        eager = torch.cat([twin(x) for x in xs])
    out = torch.cat([run_program(pte.path, [x])[0] for x in xs])
    assert sqnr_db(fp32, out) >= 33.0  # measured 37.1 (shapes), 39.8 (digits) on all val images
    assert sqnr_db(eager, out) >= 30.0  # issue 16: the .pte agrees with the eager int8 module


def test_dynamic_without_images_warns_about_the_measurement_not_the_ranges(tmp_path):
    from dotcom_mobile.quantize.api import quantize_model

    result = quantize_model("dotcom_tiny", backend="xnnpack", dynamic=True, input_size=64, num_calib=4,
                            out_dir=tmp_path, progress=False, per_layer=False)
    (warning,) = result.report["warnings"]
    assert "measured on random synthetic inputs" in warning and "--val" in warning
    assert "ranges" not in warning  # dynamic scales come from each input at run time: nothing to calibrate
    assert result.report["quantization_details"]["scheme"].startswith("int8 dynamic")


@pytest.mark.slow
def test_static_results_under_30_db_point_at_dynamic(dynamic_run):
    from dotcom_mobile.quantize.commands import accuracy_hint

    report = dynamic_run[3].report
    assert accuracy_hint(report) is None  # dynamic: nothing to point at
    static = {**report, "quantization_details": {**report["quantization_details"], "dynamic": False,
                                                  "scheme_choice": None}}
    low = {**static, "evaluation": {**report["evaluation"], "sqnr_db": 26.2}}
    assert accuracy_hint(static) is None  # >= 30 dB
    hint = accuracy_hint(low)
    assert hint.startswith("Hint: 26.2 dB is under 30 dB") and "--scheme dynamic" in hint and "\n" not in hint
    assert accuracy_hint({**low, "backend": "coreml"}) is None  # Core ML has no dynamic scheme
    if report["quantization_details"]["scheme_choice"]:  # auto already measured dynamic: nothing to suggest
        tried = {**low, "quantization_details": {**report["quantization_details"], "dynamic": False}}
        assert accuracy_hint(tried) is None


@pytest.mark.slow
def test_auto_takes_dynamic_where_static_falls_under_the_floor(dynamic_run):
    name, _, _, result, pte = dynamic_run
    choice = result.report["quantization_details"]["scheme_choice"]
    if name == "digits":
        assert choice is None  # --scheme dynamic: nothing chosen
        return
    assert choice["chosen"] == "dynamic" and choice["floor_db"] == 30.0
    assert choice["static"]["sqnr_db"] < 30.0 <= choice["dynamic"]["sqnr_db"]  # measured 26.2 and 36.3
    assert all(result.report["evaluation"][k] == v for k, v in choice["dynamic"].items())  # what was kept
    assert choice["reason"].startswith("dynamic (") and "--scheme static" in choice["reason"]
    assert pte.manifest["quantization_details"]["scheme_choice"]["chosen"] == "dynamic"
    assert "Scheme chosen by `--scheme auto`: dynamic" in result.report_md_path.read_text()


def test_dynamic_flag_and_another_scheme_is_one_line(capsys, tmp_path):
    from dotcom_mobile.cli import main

    rc = main(["quantize", "--model", "dotcom_tiny", "--dynamic", "--scheme", "static", "--out", str(tmp_path / "q")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err == "Error: --dynamic contradicts --scheme static"
    assert not (tmp_path / "q").exists()
