"""The editor's mask operations as pure functions on arrays: flood fill, superpixels and the superpixel brush,
GrabCut from a box (or a rough stroke), and the model's doubtful pixels.

The painter does fill and the superpixel brush itself in the browser on the superpixels computed here; GrabCut runs
here on request. Masks are uint8 (H, W) class indices; images RGB uint8 (H, W, 3); boxes (x0, y0, x1, y1) in image
pixels, x1 and y1 exclusive.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SUPERPIXEL_SIZE = 16
"""Superpixel side in pixels (about 675 on 360x480). OpenCV's SLIC, 4 iterations: see benchmarks/superpixels.py."""
MAX_SUPERPIXELS = 60_000
"""Larger images get larger superpixels, so that labels fit the painter's uint16 encoding."""
GRABCUT_ITERATIONS = 3
GRABCUT_MARGIN = 24
"""Pixels of context kept around the box: GrabCut learns the background colours from them."""
GRABCUT_MAX_PIXELS = 60_000
"""A larger box-plus-context is segmented at a reduced scale (about 245x245) and the answer scaled back up."""
DOUBT_THRESHOLD = 0.6
"""A pixel is doubtful when the model's top-class probability is below this."""


def flood_fill(mask: np.ndarray, x: int, y: int, value: int) -> np.ndarray:
    """A copy of ``mask`` whose 4-connected region of equal class containing (x, y) is set to ``value``."""
    result = np.array(mask, dtype=np.uint8, copy=True)
    height, width = result.shape
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"({x}, {y}) lies outside the {width}x{height} mask")
    _, regions = cv2.connectedComponents((result == result[y, x]).astype(np.uint8), connectivity=4)
    result[regions == regions[y, x]] = value
    return result


def superpixels(image: np.ndarray, *, size: int = SUPERPIXEL_SIZE, iterations: int = 4) -> np.ndarray:
    """SLIC superpixels of an RGB uint8 image → int32 (H, W) labels 0..N-1 (N < 65536), each region 4-connected.

    ``size`` grows on images so large that it would give more than ``MAX_SUPERPIXELS``.
    """
    image = np.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 array (H, W, 3), got {image.dtype} {image.shape}")
    size = max(size, math.ceil(math.sqrt(image.shape[0] * image.shape[1] / MAX_SUPERPIXELS)))
    lab = cv2.cvtColor(cv2.GaussianBlur(image, (3, 3), 0), cv2.COLOR_RGB2LAB)
    engine = cv2.ximgproc.createSuperpixelSLIC(lab, algorithm=cv2.ximgproc.SLIC, region_size=size, ruler=10.0)
    engine.iterate(iterations)
    engine.enforceLabelConnectivity(25)
    labels = engine.getLabels().astype(np.int32)
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(labels.shape).astype(np.int32)


BRUSH_SIZE = 16
"""The editor's default brush size in pixels (the painter's size slider starts here)."""


def disc(height: int, width: int, x: float, y: float, size: float = BRUSH_SIZE) -> np.ndarray:
    """bool (H, W): the pixels the editor's brush of diameter ``size`` covers at (x, y) (image coordinates,
    pixel centres within size / 2), and always the pixel under the pointer (as the painter's stamp does)."""
    rows, cols = np.ogrid[:height, :width]
    covered = (cols + 0.5 - x) ** 2 + (rows + 0.5 - y) ** 2 <= (size / 2) ** 2
    if 0 <= int(x) < width and 0 <= int(y) < height:
        covered[int(y), int(x)] = True
    return covered


def superpixels_under(segments: np.ndarray, x: float, y: float, size: float = BRUSH_SIZE) -> np.ndarray:
    """The superpixel ids (int, sorted) the superpixel brush of diameter ``size`` touches with a click at (x, y)."""
    return np.unique(segments[disc(*segments.shape, x, y, size)])


def paint_superpixels(mask: np.ndarray, segments: np.ndarray, touched, value: int) -> np.ndarray:
    """A copy of ``mask`` with every pixel of the superpixels ``touched`` (label ids) set to ``value``."""
    result = np.array(mask, dtype=np.uint8, copy=True)
    result[np.isin(segments, np.asarray(list(touched), dtype=np.int64))] = value
    return result


def grabcut(image: np.ndarray, box: tuple[int, int, int, int], *, foreground: np.ndarray | None = None,
            iterations: int = GRABCUT_ITERATIONS) -> np.ndarray:
    """The object's pixels inside ``box`` as GrabCut sees them → bool (H, W), False outside the box.

    ``foreground`` (bool (H, W), e.g. a rough stroke) marks pixels that surely belong to the object. Runs on the box
    plus ``GRABCUT_MARGIN`` pixels of context, with a fixed random seed: the same input gives the same answer.
    """
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, x1 = sorted((max(0, min(width, x0)), max(0, min(width, x1))))
    y0, y1 = sorted((max(0, min(height, y0)), max(0, min(height, y1))))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"the box ({x0}, {y0})-({x1}, {y1}) is too small: drag at least 2x2 pixels")
    result = np.zeros((height, width), bool)
    cx0, cy0 = max(0, x0 - GRABCUT_MARGIN), max(0, y0 - GRABCUT_MARGIN)
    cx1, cy1 = min(width, x1 + GRABCUT_MARGIN), min(height, y1 + GRABCUT_MARGIN)
    if (x0, y0, x1, y1) == (0, 0, width, height):
        raise ValueError("the box covers the whole image: leave some background around the object")
    labels = np.full((cy1 - cy0, cx1 - cx0), cv2.GC_BGD, np.uint8)
    labels[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0] = cv2.GC_PR_FGD
    if foreground is not None:
        sure = np.asarray(foreground, bool)[cy0:cy1, cx0:cx1] & (labels == cv2.GC_PR_FGD)
        labels[sure] = cv2.GC_FGD
    crop = cv2.cvtColor(image[cy0:cy1, cx0:cx1], cv2.COLOR_RGB2BGR)
    full_size = (crop.shape[1], crop.shape[0])
    scale = min(1.0, (GRABCUT_MAX_PIXELS / (full_size[0] * full_size[1])) ** 0.5)
    if scale < 1.0:
        small = (max(2, round(full_size[0] * scale)), max(2, round(full_size[1] * scale)))
        crop = cv2.resize(crop, small, interpolation=cv2.INTER_AREA)
        labels = cv2.resize(labels, small, interpolation=cv2.INTER_NEAREST)
    background, model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(crop, labels, None, background, model, iterations, cv2.GC_INIT_WITH_MASK)
    chosen = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
    if scale < 1.0:
        chosen = cv2.resize(chosen, full_size, interpolation=cv2.INTER_NEAREST)
    result[cy0:cy1, cx0:cx1] = chosen.astype(bool)
    result[:y0], result[y1:], result[:, :x0], result[:, x1:] = False, False, False, False
    return result


def doubtful(confidence: np.ndarray, threshold: float = DOUBT_THRESHOLD) -> np.ndarray:
    """bool (H, W): pixels whose top-class probability (float (H, W) in [0, 1]) is below ``threshold``."""
    return np.asarray(confidence) < threshold


def outline(region: np.ndarray) -> np.ndarray:
    """bool (H, W): the pixels of ``region`` with a 4-neighbour outside it (or on the image border)."""
    region = np.asarray(region, bool)
    inner = cv2.erode(region.astype(np.uint8), np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8),
                      borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return region & ~inner.astype(bool)
