import json

import numpy as np
import pytest
from PIL import Image

from segdemo.labels import (CAMVID11, LabelSet, check_mask, colorize, dataset_labels,
                            mask_from_image, mask_to_palette_image, overlay)

PETS = LabelSet.from_dict({"name": "pets", "classes": [{"name": "background", "color": [0, 0, 0]},
                                                       {"name": "cat", "color": [220, 120, 40]},
                                                       {"name": "dog", "color": [40, 120, 220]}],
                           "ignore_index": 255})


def test_camvid_is_the_segnet_palette():
    assert CAMVID11.num_classes == 11
    assert CAMVID11.names[3] == "Road" and CAMVID11.colors[3] == (128, 64, 128)
    assert CAMVID11.hex_colors()[10] == "#0080c0"


def test_json_round_trip(tmp_path):
    PETS.save(tmp_path / "labels.json")
    assert LabelSet.load(tmp_path / "labels.json") == PETS
    assert json.loads((tmp_path / "labels.json").read_text())["classes"][1] == {"name": "cat", "color": [220, 120, 40]}


def test_dataset_without_labels_json_is_camvid(tmp_path):
    assert dataset_labels(tmp_path) == CAMVID11
    PETS.save(tmp_path / "labels.json")
    assert dataset_labels(tmp_path) == PETS


@pytest.mark.parametrize("bad, message", [
    ({"name": "x", "classes": []}, "no classes"),
    ({"name": "x", "classes": [{"name": "a", "color": [0, 0, 0]}, {"name": "a", "color": [1, 1, 1]}]}, "unique"),
    ({"name": "x", "classes": [{"name": "a", "color": [0, 0, 0]}, {"name": "b", "color": [0, 0, 0]}]}, "distinct"),
    ({"name": "x", "classes": [{"name": "a", "color": [0, 0, 300]}]}, "0-255"),
    ({"name": "x"}, "not a label set"),
])
def test_invalid_label_sets_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        LabelSet.from_dict(bad)


def test_palette_png_round_trip(tmp_path):
    mask = np.random.default_rng(0).integers(0, 3, (17, 23)).astype(np.uint8)
    mask[0, :] = 255
    image = mask_to_palette_image(mask, PETS)
    assert image.mode == "P"
    image.save(tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as loaded:
        assert np.array_equal(mask_from_image(loaded), mask)
        assert loaded.convert("RGB").getpixel((0, 1)) == tuple(PETS.colors[mask[1, 0]])
        assert loaded.convert("RGB").getpixel((0, 0)) == (0, 0, 0)


def test_values_outside_the_label_set_are_refused():
    with pytest.raises(ValueError, match="outside label set"):
        check_mask(np.full((3, 3), 5, dtype=np.uint8), PETS)
    with pytest.raises(ValueError, match="2-D"):
        check_mask(np.zeros((3, 3, 3), dtype=np.uint8), PETS)


def test_colorize_and_overlay():
    mask = np.array([[0, 1], [2, 255]], dtype=np.uint8)
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    assert colorize(mask, PETS)[0, 1].tolist() == [220, 120, 40]
    assert np.array_equal(overlay(image, mask, PETS, 0.0), image)
    full = overlay(image, mask, PETS, 1.0)
    assert full[1, 0].tolist() == [40, 120, 220]
    assert full[1, 1].tolist() == [100, 100, 100]
    assert overlay(image, mask, PETS, 0.5)[0, 1].tolist() == [160, 110, 70]

