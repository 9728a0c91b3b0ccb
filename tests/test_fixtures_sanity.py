import pytest
import torch

import dotcom_mobile.model as M


@pytest.mark.slow
def test_trained_fixture_reloads_self_described(trained_tiny):
    model = M.create_model("dotcom_tiny", checkpoint=trained_tiny)
    meta = model.dotcom_meta
    assert meta["num_classes"] == 4 and meta["class_names"] == ["circle", "cross", "square", "triangle"]
    assert meta["preprocess"].input_size == (3, 64, 64)
    ckpt = torch.load(trained_tiny, weights_only=True)
    assert ckpt["val_top1"] >= 0.5
