"""Compare fine-tune settings through the real loop (store + job), on spread and on consecutive corrections.

    python -m benchmarks.loop_settings --model unet_compact --data ../shared/data/camvid --split val --n 10

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
    "changed pixels weighted x2": {"changed_weight": 2.0},
    "conservative (head 1e-3, backbone x0.1, frozen BN, L2-SP 1e-3, changed x2)": {
        "lr": 1e-3, "backbone_lr_mult": 0.1, "freeze_bn": True, "l2sp": 1e-3, "changed_weight": 2.0},
    "frozen BN statistics": {"freeze_bn": True},
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
