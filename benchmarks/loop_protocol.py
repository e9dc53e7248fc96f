"""The loop judged where the frames scored are not near-copies of the ones corrected.

CamVid val is one drive (0016E5) that also gives 204 of the 367 training frames, so the loop measured on val
rewards memorising. This protocol trains a zoo model without one drive and runs the loop on that drive:

    python -m benchmarks.loop_protocol split --camvid ../shared/data/camvid --drive 0006R0 --out ../data/camvid_lodo
    python -m segdemo train --model fcn8s_lite0 --data ../data/camvid_lodo --train-split train_no0006R0 ... \\
        --out runs/lodo/fcn8s_lite0.safetensors
    python -m benchmarks.loop_protocol loop --model fcn8s_lite0 --weights runs/lodo/fcn8s_lite0.safetensors \\
        --data ../data/camvid_lodo --split drive0006R0 --variants default old --seeds 0 1

``loop`` prints one JSON line per run (variant, pick, start, seed) and then, per variant and pick, the mean
and range of the change in mIoU on the drive's other frames: for the live model after the saves (the fast learner
alone), after the button, and for the button's version whether promoted or not. The name-order case (classes in
blocks) is a session: ``python -m segdemo bench-session --data ../shared/data/pets3 --split trainval --order
spread``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from segdemo.inference import configure_threads
from segdemo.learning.finetune_settings import FinetuneSettings
from segdemo.session import bench_loop

VARIANTS = {
    "default": {},
    "old (select on held-out, early stop)": {"select_on_heldout": True},
    "encoder LR x0.1, distil 0.5, WiSE 0.3": {"encoder_lr_mult": 0.1, "distill": 0.5, "average": 0.3},
    "distil 0.5, WiSE 0.3": {"distill": 0.5, "average": 0.3},
    "distil 0.5, WiSE 0.3, lr 1e-3": {"distill": 0.5, "average": 0.3, "lr": 1e-3},
    "lr 1e-3, encoder x0.3, distil 0.5, WiSE 0.3": {"lr": 1e-3, "encoder_lr_mult": 0.3, "distill": 0.5, "average": 0.3},
    "frozen BN": {"freeze_bn": True},
}


def make_split(camvid: Path, drive: str, out: Path) -> None:
    """OUT with links to CamVid's images, masks and labels, its splits, and train_no<drive> / drive<drive>."""
    (out / "splits").mkdir(parents=True, exist_ok=True)
    for name in ("images", "masks", "labels.json"):
        link = out / name
        if not link.exists():
            os.symlink((camvid / name).resolve(), link)
    train = (camvid / "splits" / "train.txt").read_text().split()
    for split in ("train", "val"):
        (out / "splits" / f"{split}.txt").write_text((camvid / "splits" / f"{split}.txt").read_text())
    (out / "splits" / f"train_no{drive}.txt").write_text("".join(f"{i}\n" for i in train if not i.startswith(drive)))
    (out / "splits" / f"drive{drive}.txt").write_text("".join(f"{i}\n" for i in train if i.startswith(drive)))
    print(f"{out}: train_no{drive} ({sum(not i.startswith(drive) for i in train)} ids), "
          f"drive{drive} ({sum(i.startswith(drive) for i in train)} ids)")


def run_loop(args: argparse.Namespace) -> None:
    configure_threads()
    rows = []
    for name in args.variants:
        settings = FinetuneSettings().with_values(VARIANTS[name])
        for pick in args.picks:
            for start in (args.starts if pick == "consecutive" else [0]):
                for seed in args.seeds:
                    with tempfile.TemporaryDirectory() as scratch:
                        row = bench_loop(args.model, args.data, args.split, args.n, settings=replace(settings, seed=seed),
                                         workspace_dir=scratch, pick=pick, start=start, weights=args.weights,
                                         fast=not args.no_fast, press=not args.no_button)
                    if row["miou_candidate"] is None:
                        row["miou_candidate"] = row["miou_saves"]
                    row = {"variant": name, **{k: row.get(k) for k in (
                        "pick", "start", "seed", "n", "miou_before", "miou_saves", "miou_after", "miou_candidate",
                        "save_to_learned_median_s", "fast_promoted", "promoted", "explanation")}}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print(f"\n{'variant':<22} {'pick':<12} runs  after the saves: mean [min, max]   live after the button: mean "
          f"[min, max]   button's version: mean [min, max]")
    for name in args.variants:
        for pick in args.picks:
            group = [r for r in rows if r["variant"] == name and r["pick"] == pick]
            columns = [[r[key] - r["miou_before"] for r in group] for key in ("miou_saves", "miou_after",
                                                                              "miou_candidate")]
            print(f"{name:<22} {pick:<12} {len(group):>4}  " + "   ".join(
                f"{statistics.mean(c):+.3f} [{min(c):+.3f}, {max(c):+.3f}]" for c in columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    split = commands.add_parser("split", help="write a leave-one-drive-out copy of CamVid's splits")
    split.add_argument("--camvid", type=Path, required=True)
    split.add_argument("--drive", default="0006R0")
    split.add_argument("--out", type=Path, required=True)
    loop = commands.add_parser("loop", help="bench-loop over variants, picks, starts and seeds")
    loop.add_argument("--model", required=True)
    loop.add_argument("--weights", default=None, help="start weights (the model trained without the drive)")
    loop.add_argument("--data", required=True)
    loop.add_argument("--split", required=True)
    loop.add_argument("--n", type=int, default=10)
    loop.add_argument("--variants", nargs="*", default=["default"], choices=list(VARIANTS))
    loop.add_argument("--picks", nargs="*", default=["spread", "consecutive"])
    loop.add_argument("--starts", nargs="*", type=int, default=[0, 45, 91], help="first frames of consecutive picks")
    loop.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    loop.add_argument("--no-fast", action="store_true", help="the button alone, no fast learner after each save")
    loop.add_argument("--no-button", action="store_true", help="the fast learner alone")
    args = parser.parse_args()
    if args.command == "split":
        make_split(args.camvid, args.drive, args.out)
    else:
        run_loop(args)


if __name__ == "__main__":
    main()
