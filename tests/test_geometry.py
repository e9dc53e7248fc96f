"""The one rule for the size and padding an image runs at (segdemo.geometry)."""

import torch

from segdemo.geometry import MAX_MODEL_SIDE, MIN_INPUT_SIZE, model_scale, pad_to_stride, scaled_size


def test_the_shorter_side_goes_to_the_base_size_and_the_longer_stays_capped():
    assert model_scale(360, 480, 360) == 1.0 and model_scale(720, 960, 360) == 0.5
    assert model_scale(100, 4000, 360) == MAX_MODEL_SIDE / 4000, "a panorama is capped by its longer side"
    assert model_scale(50, 80, None) == 1.0
    assert scaled_size(360, 480, 0.75) == (270, 360) and scaled_size(20, 400, 0.1) == (MIN_INPUT_SIZE, 40)


def test_padding_reaches_the_stride_at_the_bottom_and_right():
    x = torch.arange(6.0).reshape(1, 1, 2, 3)
    padded = pad_to_stride(x, 4)
    assert padded.shape[-2:] == (4, 4) and torch.equal(padded[..., :2, :3], x)
    assert torch.equal(padded[..., 3, :3], x[..., 1, :]), "replicates the border"
    filled = pad_to_stride(x, 4, 255.0)
    assert (filled[..., 2:, :] == 255).all() and (filled[..., :, 3:] == 255).all()
    assert pad_to_stride(padded, 4) is padded
