"""Compare fine-tune settings through the real loop (store + job), on spread and on consecutive corrections.

    python benchmarks/loop_settings.py --model unet_compact --data ../shared/data/camvid --split val --n 10

Prints one row per (settings, pick): mIoU on the remaining ids before → after, and the fine-tune's seconds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace

from segdemo.finetune import FinetuneSettings, bench_loop
from segdemo.inference import configure_threads

VARIANTS = {
    "default": {},
    "no changed-pixel weighting": {"changed_weight": 1.0},
    "plain (lr 5e-4 everywhere, BN trained, no L2-SP)": {"lr": 5e-4, "backbone_lr_mult": 1.0, "freeze_bn": False,
                                                          "l2sp": 0.0, "changed_weight": 1.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--picks", nargs="*", default=["spread", "consecutive"])
    args = parser.parse_args()
    configure_threads()
    for name in args.variants:
        settings = replace(FinetuneSettings(), **VARIANTS[name])
        for pick in args.picks:
            with tempfile.TemporaryDirectory() as scratch:
                row = bench_loop(args.model, args.data, args.split, args.n, settings=settings,
                                 workspace_dir=scratch, pick=pick)
            print(json.dumps({"variant": name, **{k: row[k] for k in (
                "model", "pick", "n", "miou_before", "miou_after", "seconds", "promoted", "stopped")}}), flush=True)


if __name__ == "__main__":
    main()
