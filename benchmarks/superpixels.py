"""Superpixels for the editor's superpixel brush: OpenCV ximgproc vs scikit-image SLIC, speed and sharpness.

For each method, on 360x480 images (CamVid val frames when ../shared/data/camvid is present, else the app's
synthetic street scenes), prints the median milliseconds, the number of superpixels, *boundary recall* (share of
ground-truth class-boundary pixels within 2 px of a superpixel boundary) and *achievable accuracy* (pixel accuracy
when every superpixel takes its majority ground-truth class: the best a superpixel brush can reach), then one JSON
line. ``cv2.ximgproc`` comes with opencv-contrib-python-headless (requirements.txt); scikit-image rows need
``pip install scikit-image``. The app uses OpenCV SLIC with 4 iterations (``segdemo.tools.superpixels``).

    python -m benchmarks.superpixels [--images 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CAMVID = ROOT.parent / "shared" / "data" / "camvid"
REGION = 16
"""Superpixel side in pixels: about 675 superpixels on 360x480."""


def frames(count: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
    if (CAMVID / "splits" / "val.txt").is_file():
        ids = (CAMVID / "splits" / "val.txt").read_text().split()
        step = max(1, len(ids) // count)
        out = []
        for sample_id in ids[::step][:count]:
            image = next(p for p in (CAMVID / "images").glob(f"{sample_id}.*"))
            with Image.open(image) as rgb, Image.open(CAMVID / "masks" / f"{sample_id}.png") as mask:
                out.append((np.array(rgb.convert("RGB")), np.array(mask)))
        return out
    from segdemo.ui import street_scene

    return [(street_scene(seed), None) for seed in range(count)]


def methods() -> dict:
    """name → image → int labels (H, W); scikit-image rows only when it is installed (it is not a requirement)."""
    table = {}
    try:
        from skimage.segmentation import slic
    except ImportError:
        print("scikit-image missing: pip install scikit-image for its rows")
    else:
        for iterations in (10, 5):
            table[f"skimage.slic {iterations} it"] = (
                lambda image, it=iterations: slic(image, n_segments=image.shape[0] * image.shape[1] // REGION**2,
                                                  compactness=10, max_num_iter=it, start_label=0))
    if hasattr(cv2, "ximgproc"):
        lab = lambda image: cv2.cvtColor(cv2.GaussianBlur(image, (3, 3), 0), cv2.COLOR_RGB2LAB)  # noqa: E731

        def opencv(algorithm, iterations):
            def run(image):
                engine = cv2.ximgproc.createSuperpixelSLIC(lab(image), algorithm=algorithm, region_size=REGION,
                                                           ruler=10.0)
                engine.iterate(iterations)
                engine.enforceLabelConnectivity(25)
                return engine.getLabels()
            return run

        def seeds(image):
            height, width = image.shape[:2]
            engine = cv2.ximgproc.createSuperpixelSEEDS(width, height, 3, height * width // REGION**2, 4, 2, 5, True)
            engine.iterate(cv2.cvtColor(image, cv2.COLOR_RGB2HSV), 4)
            return engine.getLabels()

        def lsc(image):
            engine = cv2.ximgproc.createSuperpixelLSC(lab(image), region_size=REGION)
            engine.iterate(10)
            engine.enforceLabelConnectivity(25)
            return engine.getLabels()

        table.update({"cv2.ximgproc SLIC": opencv(cv2.ximgproc.SLIC, 10),
                      "cv2.ximgproc SLIC 4 it (app)": opencv(cv2.ximgproc.SLIC, 4),
                      "cv2.ximgproc SLICO": opencv(cv2.ximgproc.SLICO, 10),
                      "cv2.ximgproc MSLIC": opencv(cv2.ximgproc.MSLIC, 10),
                      "cv2.ximgproc SEEDS": seeds, "cv2.ximgproc LSC": lsc})
    return table


def boundaries(labels: np.ndarray) -> np.ndarray:
    edge = np.zeros(labels.shape, bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    return edge


def quality(segments: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(boundary recall within 2 px, achievable accuracy) against a class mask; void pixels left out."""
    valid = truth != 255
    truth_edges = boundaries(truth) & valid
    near = cv2.dilate(boundaries(segments).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    recall = float((near & truth_edges).sum() / max(1, truth_edges.sum()))
    segments = segments.astype(np.int64)
    counts = np.zeros((segments.max() + 1, 256), np.int64)
    np.add.at(counts, (segments[valid], truth[valid]), 1)
    return recall, float(counts.max(axis=1).sum() / max(1, valid.sum()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    data = frames(args.images)
    source = "CamVid val" if data[0][1] is not None else "synthetic street scenes (no ground truth)"
    print(f"{len(data)} images of {data[0][0].shape[1]}x{data[0][0].shape[0]} from {source}; "
          f"{'cv2.ximgproc available' if hasattr(cv2, 'ximgproc') else 'cv2.ximgproc missing'}")
    rows = []
    for name, run in methods().items():
        times, counts, recalls, accuracies = [], [], [], []
        for image, truth in data:
            for _ in range(args.runs):
                started = time.perf_counter()
                segments = run(image)
                times.append((time.perf_counter() - started) * 1000)
            counts.append(int(segments.max()) + 1)
            if truth is not None:
                recall, accuracy = quality(segments, truth)
                recalls.append(recall)
                accuracies.append(accuracy)
        row = {"method": name, "ms_p50": round(statistics.median(times), 1), "segments": round(statistics.mean(counts)),
               "boundary_recall": round(statistics.mean(recalls), 4) if recalls else None,
               "achievable_accuracy": round(statistics.mean(accuracies), 4) if accuracies else None}
        rows.append(row)
        quality_text = (f"boundary recall {row['boundary_recall']:.3f}  achievable acc {row['achievable_accuracy']:.4f}"
                        if recalls else "")
        print(f"{name:<20} {row['ms_p50']:7.1f} ms  {row['segments']:5d} superpixels  {quality_text}", flush=True)
    print(json.dumps(rows, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
