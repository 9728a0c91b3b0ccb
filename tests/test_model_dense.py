"""Detection (SSDLite) and segmentation (DeepLabv3) heads, post-processing and MAC counting."""

from __future__ import annotations

import pytest
import torch

import dotcom_mobile.model as M
from dotcom_mobile.model.deploy import to_deploy
from dotcom_mobile.model.flops import build_on_meta, mac_breakdown, variant_macs
from dotcom_mobile.model.postprocess import (
    BOX_CODER_WEIGHTS, boxes_to_image, class_shares, decode_boxes, postprocess_detections,
)

PAPER_DETECT = {"dotcom_base": 6.7e6, "dotcom_large": 12.9e6}
PAPER_SEGMENT = {"dotcom_small": 3.2e6, "dotcom_base": 6.4e6, "dotcom_large": 18.1e6}


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- parameter bands -------------------------------------------------------------------

@pytest.mark.parametrize("name", M.list_models())
def test_detector_params_within_10_percent_of_paper(name):
    model = build_on_meta(name, "detect")
    assert model.num_classes == 91
    if name in PAPER_DETECT:
        assert abs(_params(model) / PAPER_DETECT[name] - 1) <= 0.10, _params(model)


@pytest.mark.parametrize("name", M.list_models())
def test_segmenter_params_within_10_percent_of_paper(name):
    model = build_on_meta(name, "segment")
    assert model.num_classes == 21
    if name in PAPER_SEGMENT:
        assert abs(_params(model) / PAPER_SEGMENT[name] - 1) <= 0.10, _params(model)


def test_segmenter_backbone_is_the_classifier_backbone():
    """Dilation changes no weight shape: ImageNet weights of the classifier load as they are."""
    cls = M.create_model("dotcom_small")
    seg = M.create_model("dotcom_small", task="segment")
    backbone_sd = {k: v for k, v in cls.state_dict().items() if not k.startswith("head.")}
    seg.backbone.load_state_dict(backbone_sd, strict=False)
    assert {k: tuple(v.shape) for k, v in seg.backbone.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in backbone_sd.items()}


# ---- detection ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    return M.create_model("dotcom_tiny", task="detect")


def test_detector_outputs_and_meta(detector):
    assert detector.dotcom_meta["task"] == "detect" and detector.dotcom_meta["class_names"][1] == "person"
    assert detector.dotcom_meta["preprocess"].input_size == (3, 320, 320)
    with torch.no_grad():
        boxes, logits = detector(torch.randn(2, 3, 320, 320))
    anchors = detector.anchors(320)
    assert anchors.shape == (3234, 4)  # 6 anchors x (20^2 + 10^2 + 5^2 + 3^2 + 2^2 + 1)
    assert boxes.shape == (2, 3234, 4) and logits.shape == (2, 3234, 91)
    assert detector.anchors((256, 320)).shape[0] == 6 * (16 * 20 + 8 * 10 + 4 * 5 + 2 * 3 + 1 * 2 + 1)


def test_detector_matches_torchvision_head_layout(detector):
    """Our 4-D flattening gives exactly torchvision's SSDScoringHead order (which uses 5-D views)."""
    x = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        boxes, logits = detector(x)
        ref = detector.head(detector.features(x))
    assert torch.equal(boxes, ref["bbox_regression"]) and torch.equal(logits, ref["cls_logits"])


def test_anchors_equal_torchvision_generator_on_real_features(detector):
    from torchvision.models.detection.image_list import ImageList

    x = torch.randn(1, 3, 256, 384)
    with torch.no_grad():
        feats = detector.features(x)
    ref = detector.anchor_generator(ImageList(x, [(256, 384)]), feats)[0]
    assert torch.equal(detector.anchors((256, 384)), ref)
    with torch.no_grad():
        boxes, _ = detector(x)
    assert boxes.shape[1] == ref.shape[0]


def test_detector_deploy_form_and_custom_classes():
    torch.manual_seed(0)
    model = M.create_model("dotcom_tiny", task="detect", num_classes=5, co_bias=True)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "co_bias" in name:
                p.normal_(0, 0.5)
        x = torch.randn(1, 3, 128, 128)
        ref = model(x)
        for backend in ("xnnpack", "coreml"):
            out = to_deploy(model, backend)(x)
            assert all((a - b).abs().max().item() <= 1e-4 for a, b in zip(out, ref)), backend
    assert ref[1].shape[-1] == 5 and model.dotcom_meta["class_names"] == [f"class_{i}" for i in range(5)]


# ---- segmentation -------------------------------------------------------------------------

def test_segmenter_output_at_input_resolution():
    torch.manual_seed(0)
    model = M.create_model("dotcom_tiny", task="segment")
    assert model.dotcom_meta["preprocess"].input_size == (3, 512, 512)
    assert model.dotcom_meta["class_names"][15] == "person"
    x = torch.randn(1, 3, 512, 512)
    with torch.no_grad():
        feats = model.backbone.forward_stages(x)
        out = model(x)
    assert out.shape == (1, 21, 512, 512)
    assert [f.shape[-1] for f in feats] == [256, 128, 64, 64, 32, 32]  # output stride 16
    with torch.no_grad():
        assert model(torch.randn(2, 3, 96, 160)).shape == (2, 21, 96, 160)


def test_segmenter_deploy_form_equals_training_form():
    torch.manual_seed(0)
    model = M.create_model("dotcom_tiny", task="segment", num_classes=4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "co_bias" in name:
                p.normal_(0, 0.5)
        x = torch.randn(1, 3, 128, 128)
        ref = model(x)
        assert (to_deploy(model, "xnnpack")(x) - ref).abs().max().item() <= 1e-4


# ---- post-processing on a hand-made case ---------------------------------------------------

def test_decode_equals_torchvision_boxcoder():
    from torchvision.models.detection._utils import BoxCoder

    torch.manual_seed(0)
    anchors = torch.rand(50, 2) * 200
    anchors = torch.cat([anchors, anchors + torch.rand(50, 2) * 100 + 1], dim=1)
    codes = torch.randn(50, 4) * 3
    codes[0, 2] = 100.0  # exercises the exp clamp
    ref = BoxCoder(weights=BOX_CODER_WEIGHTS).decode_single(codes, anchors)
    torch.testing.assert_close(decode_boxes(codes, anchors), ref)


def test_postprocess_hand_made_case():
    anchors = torch.tensor([
        [10.0, 10.0, 50.0, 50.0],     # A
        [12.0, 12.0, 52.0, 52.0],     # overlaps A (IoU ~0.82)
        [100.0, 100.0, 140.0, 140.0],  # far away
        [0.0, 0.0, 20.0, 20.0],       # low scores everywhere
    ])
    reg = torch.zeros(1, 4, 4)
    reg[0, 2] = torch.tensor([10.0, 0.0, 0.0, 0.0])  # shift the third box by one anchor width (40 px) in x
    logits = torch.full((1, 4, 3), -10.0)
    logits[0, :, 0] = 0.0              # background
    logits[0, 0, 1] = 5.0              # A, class 1: 0.99
    logits[0, 1, 1] = 4.0              # near-duplicate of A, class 1: 0.61, suppressed by NMS
    logits[0, 1, 2] = 3.5              # same box, class 2: 0.37, kept (NMS is per class)
    logits[0, 2, 2] = 3.0              # far box, class 2: 0.95
    (det,) = postprocess_detections(reg, logits, anchors, (160, 160), score_thresh=0.3, nms_thresh=0.5)
    assert det.labels.tolist() == [1, 2, 2]
    assert det.scores.tolist() == sorted(det.scores.tolist(), reverse=True)
    torch.testing.assert_close(det.boxes[0], anchors[0])
    torch.testing.assert_close(det.boxes[1], torch.tensor([140.0, 100.0, 160.0, 140.0]))  # 140..180 clipped to 160
    torch.testing.assert_close(det.boxes[2], anchors[1])
    p = torch.softmax(logits[0, 0], 0)[1].item()
    assert det.scores[0].item() == pytest.approx(p)
    (few,) = postprocess_detections(reg, logits, anchors, (160, 160), score_thresh=0.3, detections_per_img=1)
    assert len(few) == 1 and few.labels.tolist() == [1]
    (none,) = postprocess_detections(reg, logits, anchors, (160, 160), score_thresh=0.999)
    assert len(none) == 0 and none.boxes.shape == (0, 4)
    with pytest.raises(ValueError, match="anchors"):
        postprocess_detections(reg, logits, anchors[:3], (160, 160))


def test_boxes_to_image_inverts_resize_and_crop():
    """A white rectangle found in the preprocessed input maps back onto the original one."""
    from PIL import Image, ImageDraw

    pre = M.PreprocessConfig((3, 320, 320), crop_pct=1.0)
    for size, rect in (((640, 480), (200, 100, 400, 300)), ((300, 500), (40, 150, 260, 330))):
        image = Image.new("RGB", size)
        ImageDraw.Draw(image).rectangle([rect[0], rect[1], rect[2] - 1, rect[3] - 1], fill=(255, 255, 255))
        mask = pre.transform()(image)[0] > 0
        ys, xs = torch.nonzero(mask, as_tuple=True)
        box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)
        back = boxes_to_image(box, size, pre)[0]
        assert (back - torch.tensor(rect, dtype=torch.float32)).abs().max().item() <= 2.0, (size, back)


def test_class_shares():
    logits = torch.zeros(3, 2, 2)
    logits[1, 0, :] = 1.0
    logits[2, 1, 1] = 1.0
    assert class_shares(logits).tolist() == [0.25, 0.5, 0.25]
    assert class_shares(logits[None]).sum().item() == pytest.approx(1.0)


# ---- MACs -----------------------------------------------------------------------------------

def test_mac_count_matches_hand_count_and_paper():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8))
    # 32x32 outputs: 3*8*9 + 8*1*9 MACs per pixel
    assert mac_breakdown(conv, 32).conv == 32 * 32 * (3 * 8 * 9 + 8 * 9)
    base = variant_macs("dotcom_base", "classify", 224)
    large = variant_macs("dotcom_large", "classify", 224)
    # The reference README: conv + linear at 224 is Base 1.61G, Large 3.41G; attention ~0.05G.
    assert round(base.conv_linear / 1e9, 2) == 1.61 and round(large.conv_linear / 1e9, 2) == 3.41
    assert 0.04e9 < base.attention < 0.06e9 and base.other == 0
    # meta-device count equals a real-tensor count
    real = mac_breakdown(M.create_model("dotcom_tiny", num_classes=10), 64)
    with torch.device("meta"):
        on_meta = M.DoTCoM(M.VARIANTS["dotcom_tiny"], num_classes=10)
    assert real == mac_breakdown(on_meta, 64) and real.attention > 0
