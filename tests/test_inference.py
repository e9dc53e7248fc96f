"""Inference from any image mode and orientation to a mask at native size."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from segdemo.fileio import ImageError, read_rgb
from segdemo.geometry import MAX_MODEL_SIDE
from segdemo.inference import Predictor
from segdemo.models import build_model
from tests.drawing import draw_scene


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    return Predictor(build_model("fcn8s_compact"), name="fcn8s_compact", version="random")


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "I;16", "I", "F", "CMYK", "1"])
def test_every_mode_becomes_rgb_at_native_size(mode, predictor):
    base = Image.fromarray(np.random.default_rng(0).integers(0, 255, (31, 45, 3), dtype=np.uint8))
    image = base.convert(mode) if mode not in ("I;16",) else Image.fromarray(
        (np.arange(31 * 45).reshape(31, 45) * 40).astype(np.uint16))
    rgb = read_rgb(image)
    assert rgb.shape == (31, 45, 3) and rgb.dtype == np.uint8
    prediction = predictor.predict(image)
    assert prediction.mask.shape == (31, 45) and prediction.confidence.shape == (31, 45)
    assert 0 < prediction.confidence.min() <= prediction.confidence.max() <= 1


def test_sixteen_bit_range_is_stretched_not_clipped():
    image = Image.fromarray(np.array([[0, 30000], [60000, 65535]], dtype=np.uint16))
    assert read_rgb(image)[..., 0].tolist() == [[0, 117], [233, 255]]


def test_exif_orientation_is_honoured():
    upright = np.zeros((20, 40, 3), dtype=np.uint8)
    upright[:, :20] = 255
    stored = Image.fromarray(upright).rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, "JPEG", exif=exif.tobytes(), quality=95)
    assert Image.open(io.BytesIO(data)).size == (20, 40)
    rgb = read_rgb(data)
    assert rgb.shape == (20, 40, 3)
    assert rgb[:, :18].mean() > 240 and rgb[:, 22:].mean() < 15


@pytest.mark.parametrize("payload, message", [
    (b"hello, not an image", "not an image"),
    (b"", "not an image"),
    (encode(Image.new("RGB", (64, 64)))[:60], "could not be decoded"),
])
def test_bad_files_give_clear_errors(payload, message):
    with pytest.raises(ImageError, match=message):
        read_rgb(payload)


def test_decompression_bomb_is_refused():
    big = encode(Image.new("L", (12000, 12000)))
    with pytest.raises(ImageError, match="too large"):
        read_rgb(big)


def test_one_pixel_image_is_refused(predictor):
    with pytest.raises(ValueError, match="at least 16x16"):
        predictor.predict(np.zeros((1, 1, 3), dtype=np.uint8))


def test_large_image_is_downscaled_for_the_model_but_mask_is_native(predictor):
    image = np.random.default_rng(1).integers(0, 255, (300, MAX_MODEL_SIDE + 301, 3), dtype=np.uint8)
    prediction = predictor.predict(image)
    assert prediction.mask.shape == (300, MAX_MODEL_SIDE + 301)


def test_batch_matches_single_images(predictor):
    images = [np.random.default_rng(i).integers(0, 255, (360, 480, 3), dtype=np.uint8) for i in range(3)]
    batch = predictor.predict_batch(images)
    for image, result in zip(images, batch):
        single = predictor.predict(image)
        assert (single.mask == result.mask).mean() > 0.999


@pytest.mark.parametrize("size, scale", [((360, 480), 1.0), ((720, 960), 0.5), ((180, 240), 2.0),
                                         ((3000, 4000), 0.12), ((400, 3000), MAX_MODEL_SIDE / 3000)])
def test_images_are_resized_to_the_training_scale(predictor, size, scale):
    assert predictor.model_scale(*size) == pytest.approx(scale)


def test_without_base_size_images_go_in_as_given_up_to_the_side_limit():
    model = build_model("fcn8s_compact")
    predictor = Predictor(model, base_size=None)
    assert predictor.model_scale(180, 240) == 1.0
    assert predictor.model_scale(300, 2048) == pytest.approx(0.5)


def test_the_same_scene_uploaded_larger_gets_the_same_mask():
    shipped = Predictor.from_weights("fcn8s_compact")
    scene = np.array(Image.fromarray(draw_scene(3)[0]).resize((480, 360), Image.BILINEAR))
    large = np.array(Image.fromarray(scene).resize((1440, 1080), Image.BICUBIC))
    small_mask, large_mask = shipped.predict(scene).mask, shipped.predict(large).mask
    assert large_mask.shape == (1080, 1440)
    assert (large_mask[1::3, 1::3] == small_mask).mean() > 0.95
