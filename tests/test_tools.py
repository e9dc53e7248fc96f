"""The editor's mask operations: flood fill, superpixels and the superpixel brush, GrabCut, doubtful pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from segdemo import tools

from tests.drawing import draw_scene


def test_flood_fill_matches_connected_region():
    mask = np.zeros((6, 8), dtype=np.uint8)
    mask[:, 4] = 1  # a wall splits the zeros in two regions
    filled = tools.flood_fill(mask, 1, 1, 7)
    assert (filled[:, :4] == 7).all() and (filled[:, 4] == 1).all() and (filled[:, 5:] == 0).all()
    assert np.array_equal(tools.flood_fill(mask, 4, 0, 2)[:, 4], np.full(6, 2))
    with pytest.raises(ValueError):
        tools.flood_fill(mask, 9, 0, 1)


def test_superpixels_are_dense_connected_and_follow_the_scene():
    image, truth = draw_scene(3, 144, 192)
    segments = tools.superpixels(image)
    assert segments.dtype == np.int32 and segments.shape == truth.shape
    count = int(segments.max()) + 1
    assert np.array_equal(np.unique(segments), np.arange(count))
    assert 0.5 < count / (144 * 192 / tools.SUPERPIXEL_SIZE**2) < 1.5
    for label in range(count):
        pieces, _ = cv2.connectedComponents((segments == label).astype(np.uint8), connectivity=4)
        assert pieces == 2, f"superpixel {label} is in {pieces - 1} pieces"
    majority = np.zeros((count, 256), np.int64)
    np.add.at(majority, (segments.ravel(), truth.ravel()), 1)
    assert majority.max(axis=1).sum() / truth.size > 0.97, "superpixels must follow the drawn class edges"
    assert np.array_equal(tools.superpixels(image), segments)
    with pytest.raises(ValueError, match="RGB uint8"):
        tools.superpixels(image[..., 0])


def test_superpixel_brush_paints_exactly_whole_superpixels():
    segments = np.repeat(np.repeat(np.arange(6).reshape(2, 3), 4, axis=0), 5, axis=1)
    mask = np.zeros(segments.shape, np.uint8)
    painted = tools.paint_superpixels(mask, segments, [1, 5], 9)
    assert np.array_equal(painted == 9, (segments == 1) | (segments == 5))
    assert not mask.any(), "the input mask is not modified"


def object_on_background(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(120, 10, (120, 160, 3)), 0, 255).astype(np.uint8)
    truth = np.zeros((120, 160), bool)
    cv2.ellipse(truth.view(np.uint8), (80, 60), (35, 25), 0, 0, 360, 1, -1)
    image[truth] = np.clip(rng.normal((200, 40, 40), 10, (int(truth.sum()), 3)), 0, 255).astype(np.uint8)
    return image, truth


def test_grabcut_finds_the_object_in_the_box_and_nothing_outside():
    image, truth = object_on_background()
    box = (35, 25, 125, 95)
    found = tools.grabcut(image, box)
    assert found.dtype == bool and found.shape == truth.shape
    assert (found & truth).sum() / (found | truth).sum() > 0.95
    outside = np.ones_like(found)
    outside[25:95, 35:125] = False
    assert not found[outside].any()
    assert np.array_equal(tools.grabcut(image, box), found), "same input, same answer"
    stroke = np.zeros_like(truth)
    stroke[58:62, 60:100] = True
    assert (tools.grabcut(image, box, foreground=stroke) & stroke).sum() == stroke.sum()
    with pytest.raises(ValueError, match="too small"):
        tools.grabcut(image, (10, 10, 11, 40))
    with pytest.raises(ValueError, match="whole image"):
        tools.grabcut(image, (0, 0, 160, 120))


def test_grabcut_on_a_large_box_scales_down_and_back():
    image = cv2.resize(object_on_background()[0], (640, 480), interpolation=cv2.INTER_NEAREST)
    truth = cv2.resize(object_on_background()[1].astype(np.uint8), (640, 480), interpolation=cv2.INTER_NEAREST) > 0
    found = tools.grabcut(image, (100, 60, 540, 420))
    assert (found & truth).sum() / (found | truth).sum() > 0.9


def test_doubtful_pixels_and_their_outline():
    confidence = np.ones((10, 12), np.float32)
    confidence[2:6, 3:9] = 0.3
    region = tools.doubtful(confidence)
    assert region.sum() == 24 and tools.doubtful(confidence, 0.2).sum() == 0
    edge = tools.outline(region)
    assert edge.sum() == 24 - 2 * 4 and not edge[3:5, 4:8].any() and edge[2, 3] and edge[5, 8]
