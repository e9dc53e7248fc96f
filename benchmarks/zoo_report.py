"""Measure the shipped zoo and draw its pictures: latency into each weights entry, a val-frame comparison and
the training curves into docs/, and the zoo table (markdown) on stdout.

    python -m benchmarks.zoo_report --data ../shared/data/camvid [--frames 3]

Run it with nothing else busy on the machine: it measures latency.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from segdemo.bench import PEER, bench_row, conv_ceiling_gflops, peer_predictor
from segdemo.data import image_path, mask_path, read_mask, split_ids
from segdemo.fileio import read_rgb
from segdemo.inference import Predictor, configure_threads
from segdemo.labels import colorize, overlay
from segdemo.weights import SHIPPED_WEIGHTS_DIR, shipped_entries, write_entry

DOCS = Path(__file__).resolve().parents[1] / "docs"
ANCHORS = [("SegNet-Basic (paper, GPU)", 0.477), ("FCN-Basic (SegNet paper)", 0.473),
           ("SegNet, ImageNet VGG16 (paper, GPU, longest schedule)", 0.60),
           ("FCN-8s, ImageNet VGG16 (public PyTorch, GPU)", 0.568), ("ENet (paper)", 0.513),
           ("LinkNet, ImageNet ResNet18 (paper, GPU, higher resolution)", 0.68)]
CURVE_COLORS = [(214, 39, 40), (31, 119, 180), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


def draw_frames(data: Path, names: list[str], predictors: dict[str, Predictor], count: int) -> Image.Image:
    """Rows of val frames: image, ground truth, then each model's overlay; 240x180 tiles with captions."""
    ids = split_ids(data, "val")
    chosen = [ids[round(i * (len(ids) - 1) / max(1, count - 1))] for i in range(count)]
    tile_w, tile_h, caption = 240, 180, 18
    columns = ["image", "ground truth", *names]
    sheet = Image.new("RGB", (tile_w * len(columns), (tile_h + caption) * count + caption), "white")
    pen = ImageDraw.Draw(sheet)
    for column, title in enumerate(columns):
        pen.text((column * tile_w + 6, 3), title, fill="black")
    labels = next(iter(predictors.values())).labels
    for row, sample_id in enumerate(chosen):
        image = read_rgb(image_path(data, sample_id))
        tiles = [image, colorize(read_mask(mask_path(data, sample_id), labels), labels)]
        tiles += [overlay(image, predictors[n].predict(image).mask, labels, 0.6) for n in names]
        for column, tile in enumerate(tiles):
            resized = Image.fromarray(tile).resize((tile_w, tile_h), Image.Resampling.BILINEAR)
            sheet.paste(resized, (column * tile_w, caption + row * (tile_h + caption) + caption // 2))
    return sheet


def draw_curves(logs: dict[str, Path]) -> Image.Image:
    """Validation mIoU per epoch for each model's training log (CSV written by `segdemo train`)."""
    width, height, margin = 720, 360, 50
    chart = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(chart)
    series = {}
    for name, path in logs.items():
        with open(path) as handle:
            rows = [r for r in csv.DictReader(handle) if r["val_miou"]]
        series[name] = [(int(r["epoch"]) + 1, float(r["val_miou"])) for r in rows]
    max_epoch = max((p[0] for points in series.values() for p in points), default=1)
    x = lambda epoch: margin + (width - 2 * margin) * epoch / max_epoch
    y = lambda miou: height - margin - (height - 2 * margin) * miou / 0.8
    pen.line([(margin, height - margin), (width - margin, height - margin)], fill="black")
    pen.line([(margin, margin), (margin, height - margin)], fill="black")
    for tick in np.arange(0, 0.81, 0.1):
        pen.text((8, y(tick) - 6), f"{tick:.1f}", fill="black")
        pen.line([(margin, y(tick)), (width - margin, y(tick))], fill=(230, 230, 230))
    pen.text((width // 2 - 60, height - margin + 18), "epoch (CamVid train)", fill="black")
    pen.text((margin, 12), "val mIoU", fill="black")
    for index, (name, points) in enumerate(series.items()):
        color = CURVE_COLORS[index % len(CURVE_COLORS)]
        if len(points) > 1:
            pen.line([(x(e), y(m)) for e, m in points], fill=color, width=2)
        pen.text((width - margin - 150, margin + 16 * index), name, fill=color)
    return chart


def draw_speed_accuracy(points: list[tuple[str, float, float, float | None]], peer_ms: float) -> Image.Image:
    """mIoU against ms p50 per model: ``(name, ms, val mIoU, held-out-drive mIoU or None)``; a filled dot for val,
    a ring for the held-out drive (``selection`` in the weights entry), a dashed line at the peer's latency."""
    width, height, margin = 720, 420, 60
    chart = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(chart)
    max_ms = max([peer_ms * 2] + [ms * 1.1 for _, ms, _, _ in points])
    x = lambda ms: margin + (width - 2 * margin) * ms / max_ms
    y = lambda miou: height - margin - (height - 2 * margin) * (miou - 0.4) / 0.35
    pen.line([(margin, height - margin), (width - margin, height - margin)], fill="black")
    pen.line([(margin, margin), (margin, height - margin)], fill="black")
    for tick in np.arange(0.4, 0.751, 0.05):
        pen.text((10, y(tick) - 6), f"{tick:.2f}", fill="black")
        pen.line([(margin, y(tick)), (width - margin, y(tick))], fill=(230, 230, 230))
    for ms in range(0, int(max_ms) + 1, 10):
        pen.text((x(ms) - 6, height - margin + 4), str(ms), fill="black")
    for ratio in (1.0, 1.5):
        for top in range(margin, height - margin, 8):
            pen.line([(x(peer_ms * ratio), top), (x(peer_ms * ratio), top + 4)], fill=(150, 150, 150))
        pen.text((x(peer_ms * ratio) + 3, margin - 14), f"{ratio:.1f}x peer", fill=(120, 120, 120))
    pen.text((width // 2 - 80, height - margin + 20), "ms p50 at 360x480, 2 threads", fill="black")
    pen.text((margin, 12), "mIoU: dot = CamVid val, ring = held-out drive 0006R0", fill="black")
    for index, (name, ms, val, held_out) in enumerate(points):
        color = CURVE_COLORS[index % len(CURVE_COLORS)]
        pen.ellipse([x(ms) - 4, y(val) - 4, x(ms) + 4, y(val) + 4], fill=color)
        if held_out is not None:
            pen.ellipse([x(ms) - 5, y(held_out) - 5, x(ms) + 5, y(held_out) + 5], outline=color, width=2)
            pen.line([(x(ms), y(val)), (x(ms), y(held_out))], fill=color)
        pen.text((x(ms) + 8, y(val) - 6), name, fill=color)
    return chart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    configure_threads()
    entries = shipped_entries()
    names = sorted(entries)
    predictors = {n: Predictor.from_weights(n) for n in names}
    ceiling = conv_ceiling_gflops()
    print("| model | version | params | GFLOP | ms p50 | x peer | val mIoU | pixel acc | mean acc | "
          + " | ".join(entries[names[0]].labels.names) + " |")
    print("|---" * (9 + entries[names[0]].labels.num_classes) + "|")
    peer = bench_row(PEER, peer_predictor(), ceiling, runs=args.runs)
    for name in names:
        entry = entries[name]
        row = bench_row(name, predictors[name], ceiling, runs=args.runs)
        entry.meta["bench"] = {k: row[k] for k in ("ms_p50", "ms_p90", "ceiling_gflops_per_s", "efficiency", "threads")}
        entry.meta["bench"].update(peer=PEER, peer_ms_p50=peer["ms_p50"], peer_ratio=round(row["ms_p50"] / peer["ms_p50"], 3))
        write_entry(entry)
        val = entry.meta["metrics"]["val"]
        per_class = " | ".join("-" if v is None else f"{v:.3f}" for v in val["per_class_iou"].values())
        print(f"| `{name}` | {entry.version} | {entry.meta['params'] / 1e6:.2f} M | {entry.meta['gflops']:.2f} | "
              f"{row['ms_p50']:.0f} | {row['ms_p50'] / peer['ms_p50']:.2f} | **{val['miou']:.3f}** | {val['pixel_acc']:.3f} | "
              f"{val['mean_acc']:.3f} | {per_class} |")
    points = [(n, entries[n].meta["bench"]["ms_p50"], entries[n].meta["metrics"]["val"]["miou"],
               (entries[n].meta.get("selection") or {}).get("miou")) for n in names]
    print(f"| *{PEER} (torchvision, random weights)* | | {peer['params'] / 1e6:.2f} M | {peer['gflops']:.2f} | "
          f"{peer['ms_p50']:.0f} | 1.00 | | | | " + " | ".join([""] * entries[names[0]].labels.num_classes) + "|")
    for anchor, miou in ANCHORS:
        print(f"| *{anchor}* | | | | | | {miou:.3f} (test) | | | " + " | ".join([""] * entries[names[0]].labels.num_classes) + "|")
    DOCS.mkdir(exist_ok=True)
    draw_frames(Path(args.data), names, predictors, args.frames).save(DOCS / "zoo_val_frames.png")
    logs = {n: SHIPPED_WEIGHTS_DIR / f"{n}.log.csv" for n in names if (SHIPPED_WEIGHTS_DIR / f"{n}.log.csv").is_file()}
    draw_curves(logs).save(DOCS / "zoo_training_curves.png")
    draw_speed_accuracy(points, peer["ms_p50"]).save(DOCS / "zoo_miou_vs_ms.png")
    print(f"\nwrote {DOCS / 'zoo_val_frames.png'}, {DOCS / 'zoo_training_curves.png'} and {DOCS / 'zoo_miou_vs_ms.png'}")


if __name__ == "__main__":
    main()
