"""The accuracy/speed curve of the shipped zoo over the resolution the model is given, without retraining.

    python -m benchmarks.scale_curve --data ../shared/data/camvid [--sizes 360 300 240 180] [--json]

For each shipped model and each shorter side (``--base-size`` of ``segdemo eval`` / ``bench``): val mIoU at the
masks' native 360x480, GFLOPs and end-to-end p50 latency for a 360x480 image. Run it with nothing else busy.
"""

from __future__ import annotations

import argparse
import json

from segdemo.bench import bench_row, conv_ceiling_gflops
from segdemo.data import SegmentationDataset
from segdemo.inference import Predictor, configure_threads
from segdemo.learning.train import evaluate
from segdemo.weights import shipped_entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--sizes", type=int, nargs="+", default=[360, 300, 240, 180])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure_threads()
    ceiling = conv_ceiling_gflops()
    dataset = SegmentationDataset.from_split(args.data, args.split)
    rows = []
    print("| model | shorter side | GFLOP | ms p50 | val mIoU |\n|---|---|---|---|---|")
    for name in sorted(shipped_entries()):
        predictor = Predictor.from_weights(name)
        for size in args.sizes:
            predictor.base_size = size
            row = {**bench_row(name, predictor, ceiling), "miou": round(evaluate(predictor, dataset)["miou"], 4)}
            rows.append(row)
            print(f"| `{name}` | {size} | {row['gflops']:.2f} | {row['ms_p50']:.0f} | {row['miou']:.3f} |", flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
