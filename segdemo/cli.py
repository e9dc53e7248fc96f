"""``python -m segdemo <command>``: models, train, eval, predict, bench, finetune, bench-loop, import, export."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from segdemo.fileio import ImageError
from segdemo.learning.finetune import JobBusy
from segdemo.weights import WeightsError


class CommandError(Exception):
    """A failure to report to the user as one line, with a non-zero exit code."""


def _print_json(payload) -> None:
    print(json.dumps(payload, separators=(",", ":")))


def cmd_models(args: argparse.Namespace) -> int:
    from segdemo.bench import count_model_params
    from segdemo.models import get_spec, list_models, shipped_weights

    rows = []
    for name in list_models():
        spec, entry = get_spec(name), shipped_weights(name)
        rows.append({"name": name, "family": spec.family, "config": spec.config, "summary": spec.summary,
                     "params": count_model_params(name),
                     "weights": entry.to_dict() if entry is not None else None})
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'model':<16} {'family':<7} {'config':<8} {'params':>9}  weights")
    for row in rows:
        weights = row["weights"]
        shipped = (f"{weights['version']} val mIoU {weights['metrics']['val']['miou']:.3f}"
                   if weights and "metrics" in weights else "-")
        print(f"{row['name']:<16} {row['family']:<7} {row['config']:<8} {row['params'] / 1e6:>8.2f}M  {shipped}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from segdemo.bench import count_gflops, count_params
    from segdemo.data import Augment, SegmentationDataset
    from segdemo.labels import dataset_labels
    from segdemo.learning.train import TrainConfig, distributed_context, fit, machine_description, write_history
    from segdemo.models import build_model, get_spec
    from segdemo.weights import WeightsEntry, save_weights, write_entry

    rank, world = distributed_context()
    labels = dataset_labels(args.data)
    out = Path(args.out).with_suffix(".safetensors")
    model_kwargs = {} if args.input_scale is None else {"input_scale": args.input_scale}
    imagenet = args.init == "imagenet"
    model = build_model(args.model, num_classes=labels.num_classes, weights=None if imagenet else args.init,
                        **model_kwargs)
    normalisation = {}
    if imagenet:
        try:
            pretrained = model.load_imagenet()
        except (ImportError, ValueError) as err:
            raise CommandError(str(err)) from err
        normalisation = {"mean": pretrained["mean"], "std": pretrained["std"]}
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                         class_weight_power=args.class_weight_power, bf16=args.bf16, seconds=args.seconds,
                         patience=args.patience, val_every=args.val_every, seed=args.seed,
                         encoder_lr_mult=args.encoder_lr_mult,
                         augment=Augment(crop=tuple(args.crop), base_size=args.base_size,
                                         scale_range=tuple(args.scale_range)), **normalisation)
    train_set = SegmentationDataset.from_split(args.data, args.train_split, labels=labels, augment=config.augment)
    val_set = SegmentationDataset.from_split(args.data, args.val_split, labels=labels) if args.val_split else None
    command = "python -m segdemo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if world > 1:
        command = f"torchrun --nproc_per_node {world} -m segdemo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    meta = {"family": get_spec(args.model).family, "params": count_params(model), "gflops": round(count_gflops(model), 3),
            "recipe": {"command": command, "epochs": args.epochs, "machine": machine_description(),
                       "processes": world, "config": config.to_dict(), "train_split": args.train_split,
                       "data": Path(args.data).name}}
    if imagenet:
        meta["recipe"]["init"] = pretrained
    if rank == 0:
        print(f"training {args.model} on {len(train_set)} images of {args.data} ({labels.name}), "
              f"{meta['params'] / 1e6:.2f}M params, {meta['gflops']:.2f} GFLOP; config {config.to_dict()}", flush=True)

    def on_best(best_model, metrics, epoch) -> None:
        save_weights(best_model, out, model_name=args.model, labels=labels, input_scale=best_model.input_scale,
                     base_size=config.augment.base_size, mean=config.mean, std=config.std, version=args.version,
                     meta={**meta, "best_epoch": epoch, "metrics": {args.val_split: metrics}})

    def on_epoch(record) -> None:
        val = f" val mIoU {record.val['miou']:.4f} acc {record.val['pixel_acc']:.4f}" if record.val else ""
        print(f"epoch {record.epoch + 1} step {record.step} {record.seconds:.0f}s loss {record.loss:.4f}{val}", flush=True)

    checkpoint = out.with_suffix(".last.safetensors")
    result = fit(model, labels, train_set, val_set, config, checkpoint=checkpoint, resume=args.resume,
                 on_epoch=on_epoch, on_best=on_best if val_set is not None else None)
    if rank != 0:
        return 0
    if val_set is None:
        on_best(model, None, result.history[-1].epoch if result.history else 0)
    write_history(out, result.history)
    entry = WeightsEntry.from_json(out.with_suffix(".json"))
    entry.meta["recipe"].update(seconds=result.seconds, epochs_run=len(result.history), stopped=result.stopped)
    write_entry(entry)
    best = result.best_metrics
    print(f"done in {result.seconds:.0f}s ({result.stopped}); best val mIoU "
          f"{best['miou']:.4f} at epoch {result.best_epoch + 1}" if best else f"done in {result.seconds:.0f}s")
    print(f"weights: {out}")
    return 0


def cmd_train_decoder(args: argparse.Namespace) -> int:
    from segdemo.learning.train_decoder import DecoderConfig, train_and_save

    config = DecoderConfig(epochs=args.epochs, batch_size=args.batch_size, crop=tuple(args.crop), lr=args.lr,
                           seed=args.seed)
    command = "python -m segdemo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        entry = train_and_save(args.model, args.data, args.out, config, train_split=args.train_split,
                               score_splits=tuple(args.score_split), hold_out=args.hold_out, scales=tuple(args.scales),
                               cache=args.cache, version=args.version, command=command)
    except ValueError as err:
        raise CommandError(str(err)) from err
    print(f"weights: {entry.file}")
    return 0


def _predictor(model: str, weights: str | None, base_size: int | None = None):
    from segdemo.inference import Predictor, configure_threads

    configure_threads()
    predictor = Predictor.from_weights(model, weights or "default")
    if base_size is not None:
        predictor.base_size = base_size
    return predictor


def cmd_eval(args: argparse.Namespace) -> int:
    from segdemo.data import SegmentationDataset
    from segdemo.labels import dataset_labels
    from segdemo.learning.train import evaluate

    predictor = _predictor(args.model, args.weights, args.base_size)
    labels = dataset_labels(args.data)
    if not labels.same_classes(predictor.labels):
        raise CommandError(f"label sets differ: {args.data} has {labels.name} {list(labels.names)}, the weights "
                           f"have {predictor.labels.name} {list(predictor.labels.names)}")
    started = time.perf_counter()
    dataset = SegmentationDataset.from_split(args.data, args.split, labels=labels)
    metrics = evaluate(predictor, dataset)
    metrics.update(model=args.model, version=predictor.version, split=args.split, base_size=predictor.base_size,
                   seconds=round(time.perf_counter() - started, 2))
    print(f"{args.model} {predictor.version} on {args.data} [{args.split}], {metrics['images']} images: "
          f"mIoU {metrics['miou']:.4f}  pixel acc {metrics['pixel_acc']:.4f}  mean acc {metrics['mean_acc']:.4f}")
    for name, iou in metrics["per_class_iou"].items():
        print(f"  {name:<14} {'-' if iou is None else f'{iou:.4f}'}")
    if args.json:
        _print_json(metrics)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from segdemo.fileio import atomic_save_image, read_rgb
    from segdemo.labels import mask_to_palette_image, overlay
    from PIL import Image

    predictor = _predictor(args.model, args.weights, args.base_size)
    out = Path(args.out)
    failures = 0
    for source in args.input:
        try:
            image = read_rgb(source)
            prediction = predictor.predict_arrays([image])[0]
        except (ImageError, ValueError) as err:
            print(f"error: {source}: {err}", file=sys.stderr)
            failures += 1
            continue
        stem = Path(source).stem
        atomic_save_image(out / f"{stem}.png", mask_to_palette_image(prediction.mask, predictor.labels))
        blended = overlay(image, prediction.mask, predictor.labels, args.alpha)
        atomic_save_image(out / f"{stem}_overlay.png", Image.fromarray(blended))
        print(f"{source} -> {out / (stem + '.png')}, {out / (stem + '_overlay.png')}")
    if failures:
        raise CommandError(f"{failures} of {len(args.input)} images failed")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from segdemo.bench import PEER, bench_row, conv_ceiling_gflops, peer_predictor
    from segdemo.inference import Predictor, configure_threads
    from segdemo.models import build_model, list_models, shipped_weights

    configure_threads()
    ceiling = conv_ceiling_gflops()
    rows = []
    names = list_models(config="compact") + list_models(config="pretrained") if args.all else [
        n for n in list_models() if shipped_weights(n)]
    if not names:
        print("no model has shipped weights; `bench --all` measures the compact configurations with random weights")
    peer = peer_predictor()
    if args.base_size is not None:
        peer.base_size = args.base_size
    for name in names:
        if args.all:
            predictor = Predictor(build_model(name), name=name, version="random")
        else:
            predictor = Predictor.from_weights(name)
        if args.base_size is not None:
            predictor.base_size = args.base_size
        rows.append(bench_row(name, predictor, ceiling, runs=args.runs))
    rows.append({**bench_row(PEER, peer, ceiling, runs=args.runs), "peer": True})
    peer_ms = rows[-1]["ms_p50"]
    for row in rows:
        row["peer_ratio"] = round(row["ms_p50"] / peer_ms, 3)
        print(f"{row['model']:<26} {row['params'] / 1e6:6.2f}M {row['gflops']:7.2f} GFLOP  p50 {row['ms_p50']:7.1f} ms  "
              f"p90 {row['ms_p90']:7.1f} ms  {row['peer_ratio']:5.2f}x peer  {row['achieved_gflops_per_s']:6.1f} GFLOP/s "
              f"({row['efficiency'] * 100:.0f}% of {ceiling:.0f})", flush=True)
    if args.json:
        _print_json(rows)
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from segdemo.inference import configure_threads
    from segdemo.learning.finetune import FinetuneJob, describe
    from segdemo.learning.finetune_settings import FinetuneSettings
    from segdemo.store import Workspace

    configure_threads()
    if not Path(args.workspace).is_dir():
        raise CommandError(f"no workspace at {args.workspace}")
    workspace = Workspace(args.workspace)
    settings = FinetuneSettings(seconds=args.seconds)
    result = FinetuneJob(workspace, args.model, settings).run()
    print(describe(result))
    if args.json:
        _print_json({"model": result.model, "parent": result.parent, "version": result.version,
                     "promoted": result.promoted, "miou_before": result.before["miou"],
                     "miou_after": result.after["miou"], "seconds": result.seconds,
                     "train_samples": len(result.train_ids), "heldout_samples": len(result.heldout_ids),
                     "guard": result.decision.to_dict() if result.decision else None})
    return 0


def parse_pairs(pairs: list[str], option: str, known: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs → {key: value} (numbers, None, true/false and ``A:B:C`` tuples of numbers parsed);
    CommandError for a key not in ``known``, an empty value or one that is none of those."""
    values = {}
    for pair in pairs or []:
        key, _, text = pair.partition("=")
        if key not in known or not text:
            raise CommandError(f"{option} {pair!r}: use KEY=VALUE with KEY one of {', '.join(sorted(known))}")
        lowered = text.lower()
        try:
            if ":" in text:
                values[key] = tuple(float(part) for part in text.split(":"))
                continue
            values[key] = lowered == "true" if lowered in ("true", "false") else None if lowered == "none" \
                else float(text) if "." in text or "e" in lowered else int(text)
        except ValueError:
            raise CommandError(f"{option} {pair!r}: {text!r} is not a number, true, false or none") from None
    return values


def settings_from_pairs(cls, pairs: list[str], option: str, **defaults):
    """``KEY=VALUE`` pairs (:func:`parse_pairs`) → an instance of the flat settings dataclass ``cls`` over
    ``defaults``; CommandError for values the settings refuse."""
    from dataclasses import fields

    values = parse_pairs(pairs, option, [f.name for f in fields(cls)])
    try:
        return cls(**{**defaults, **values})
    except ValueError as err:
        raise CommandError(f"{option}: {err}") from None


def learner_settings(pairs: list[str]):
    """``--learner KEY=VALUE`` pairs → LearnerSettings."""
    from segdemo.learning.learner import LearnerSettings

    return settings_from_pairs(LearnerSettings, pairs, "--learner")


def job_settings(pairs: list[str], option: str = "--job", **defaults):
    """``KEY=VALUE`` pairs → FinetuneSettings over ``defaults``. Keys are ``FinetuneSettings.keys()``
    (``seconds``, ``top.lr``, ``whole.lr``, ...); a key from before the split into paths (``top_lr``, ``lr``) is
    taken as the key it became, which the error for an unknown key lists."""
    from segdemo.learning.finetune_settings import FinetuneSettings, current_key

    values = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        try:
            values.update(parse_pairs([f"{current_key(key)}{sep}{text}"], option, FinetuneSettings.keys()))
        except ValueError as err:
            raise CommandError(f"{option} {pair!r}: {err}") from None
    return FinetuneSettings(**defaults).with_values(values)


def finetune_settings(args: argparse.Namespace):
    """``--seconds``, ``--seed`` and ``--job KEY=VALUE`` pairs → FinetuneSettings."""
    return job_settings(args.job, seconds=args.seconds, seed=args.seed)


def cmd_bench_loop(args: argparse.Namespace) -> int:
    import tempfile

    from segdemo.inference import configure_threads
    from segdemo.session import bench_loop

    configure_threads()
    settings = finetune_settings(args)
    with tempfile.TemporaryDirectory(prefix="segdemo-loop-") as scratch:
        try:
            row = bench_loop(args.model, args.data, args.split, args.n, settings=settings,
                             workspace_dir=args.keep_workspace or scratch, pick=args.pick, start=args.start,
                             weights=args.weights, fast=not args.no_fast, press=not args.no_button,
                             learner_settings=learner_settings(args.learner))
        except ValueError as err:
            raise CommandError(str(err)) from err
    print(f"{row['model']} on {args.data} [{args.split}]: {row['n']} corrected, {row['scored']} scored; "
          f"mIoU {row['miou_before']:.4f} -> {row['miou_saves']:.4f} after the saves"
          + (f" ({row['fast_promoted']} of {row['fast_updates']} fast updates went live, median "
             f"{row['save_to_learned_median_s']} s)" if row["fast"] else " (no fast learner)"))
    if row["button"] is not None:
        print(f"Fine-tune: mIoU -> {row['miou_after']:.4f} "
              f"({'promoted ' + str(row['button']['version']) if row['promoted'] else 'not promoted'}; "
              f"the new version alone: {row['miou_candidate']:.4f}), {row['seconds']:.1f}s")
        print(f"guard: {row['explanation']}")
    if args.json:
        _print_json(row)
    return 0


def cmd_bench_session(args: argparse.Namespace) -> int:
    import tempfile

    from segdemo.inference import configure_threads
    from segdemo.session import bench_session

    configure_threads()
    settings = finetune_settings(args)
    with tempfile.TemporaryDirectory(prefix="segdemo-session-") as scratch:
        try:
            row = bench_session(args.model, args.data, args.split, images=args.images, every=args.every,
                                order=args.order, start=args.start, settings=settings, workspace_dir=scratch,
                                weights=args.weights, fast=not args.no_fast,
                                learner_settings=learner_settings(args.learner))
        except ValueError as err:
            raise CommandError(str(err)) from err
    for tune in row["finetunes"]:
        print(f"fine-tune after {tune['after']:>3} images: {tune['seconds']:5.1f}s, "
              f"{'promoted' if tune['promoted'] else 'not promoted'} ({tune['verdict']})")
    if row["fast"]:
        print(f"fast learner: {row['fast_promoted']} of {row['fast_updates']} updates went live; save -> learned "
              f"median {row['save_to_learned_median_s']} s, max {row['save_to_learned_max_s']} s")
    print(f"{row['model']} on {args.data} [{args.split}], {row['images']} images ({row['order']}), fine-tune every "
          f"{row['every'] or 'never'}: effort {row['effort']:.3f} vs {row['effort_no_loop']:.3f} without the loop "
          f"(ratio {row['effort_ratio']}); last 10 images {row['last10_error'] * 100:.1f} % wrong; "
          f"{row['seconds']:.0f}s")
    if args.json:
        _print_json(row)
    return 0


def cmd_bench_strokes(args: argparse.Namespace) -> int:
    import tempfile

    from segdemo.clicker import bench_strokes
    from segdemo.inference import configure_threads
    from segdemo.learning.strokes import StrokeSettings

    configure_threads()
    settings = settings_from_pairs(StrokeSettings, args.stroke, "--stroke")
    with tempfile.TemporaryDirectory(prefix="segdemo-strokes-") as scratch:
        try:
            row = bench_strokes(args.model, args.data, args.split, images=args.images, order=args.order,
                                start=args.start, assist=args.assist == "on", workspace_dir=scratch,
                                settings=settings, max_clicks=args.max_clicks)
        except ValueError as err:
            raise CommandError(str(err)) from err
    print(f"{row['model']} on {args.data} [{args.split}], {row['images']} images ({row['order']}), fill-in "
          f"{args.assist}: clicks to 95 % right {row['clicks_mean']} on average (first 5: {row['clicks_first5']}, "
          f"last 10: {row['clicks_last10']}); {row['reached'] * 100:.0f} % of images reached 95 % within "
          f"{args.max_clicks} clicks; re-fit median {row['refit_s_median']} s, p95 {row['refit_s_p95']} s; "
          f"{row['seconds']:.0f}s")
    if args.json:
        _print_json(row)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from segdemo.importer import describe, import_paths
    from segdemo.store import Workspace

    workspace = Workspace(args.workspace)
    report = import_paths(workspace, args.paths)
    for skipped in report.skipped:
        print(f"skipped {skipped.name}: {skipped.reason}")
    print(f"{describe(report)} into {workspace.root}")
    if args.json:
        _print_json(report.to_json())
    if not report.imported and report.skipped:
        print(f"error: nothing imported ({len(report.skipped)} skipped)", file=sys.stderr)
        return 1
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from segdemo.export import ExportError, export
    from segdemo.store import Workspace

    if not Path(args.workspace).is_dir():
        raise CommandError(f"no workspace at {args.workspace}")
    try:
        summary = export(Workspace(args.workspace), args.format, args.out)
    except ExportError as err:
        raise CommandError(str(err)) from None
    print(f"exported {summary.samples} corrected samples as {summary.format} to {summary.path} "
          f"({summary.files} files)")
    if args.json:
        _print_json({"format": summary.format, "out": str(summary.path), "samples": summary.samples,
                     "files": summary.files})
    return 0


BASE_SIZE_HELP = ("shorter side (pixels) images are resized to before the model; default: the scale the weights "
                  "were trained at (360 for the shipped ones). Lower is faster and coarser")


def _base_size(text: str) -> int:
    from segdemo.models import MIN_INPUT_SIZE

    value = int(text)
    if value < MIN_INPUT_SIZE:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_INPUT_SIZE}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m segdemo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="list registered models and their shipped weights")
    models.add_argument("--json", action="store_true", help="print the list as JSON on the last line")
    models.set_defaults(run=cmd_models)

    train = commands.add_parser("train", help="train a model on a dataset folder")
    train.add_argument("--model", required=True)
    train.add_argument("--data", required=True, help="dataset folder (images/, masks/, splits/)")
    train.add_argument("--train-split", default="train")
    train.add_argument("--val-split", default="val", help="'' to train without validation")
    train.add_argument("--out", required=True, help="output weights file (.safetensors; a .json entry is written beside it)")
    train.add_argument("--init", default=None, help="start from weights: 'default' (shipped), a .safetensors file, "
                       "or 'imagenet' (the encoder of a *_lite0 model; needs requirements-train.txt)")
    train.add_argument("--encoder-lr-mult", type=float, default=1.0,
                       help="LR multiplier for a pretrained encoder (e.g. 0.2 with --init imagenet)")
    train.add_argument("--epochs", type=int, default=60)
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--lr", type=float, default=3e-3)
    train.add_argument("--weight-decay", type=float, default=1e-4)
    train.add_argument("--class-weight-power", type=float, default=0.5,
                       help="median-frequency class weights raised to this power (1 = SegNet's, 0 = none)")
    train.add_argument("--crop", type=int, nargs=2, default=(352, 480), metavar=("H", "W"))
    train.add_argument("--base-size", type=int, default=360, help="shorter image side before scale jitter")
    train.add_argument("--scale-range", type=float, nargs=2, default=(0.75, 1.5), metavar=("LOW", "HIGH"))
    train.add_argument("--input-scale", type=float, default=None, help="resolution the model runs at (fraction)")
    train.add_argument("--seconds", type=float, default=None, help="time budget; the schedule fits into it")
    train.add_argument("--bf16", action="store_true", help="bfloat16 autocast (faster on CPUs with native bf16)")
    train.add_argument("--patience", type=int, default=None, help="stop after this many validations without gain")
    train.add_argument("--val-every", type=int, default=1)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--version", default="v1", help="version label stored in the weights entry")
    train.add_argument("--resume", action="store_true", help="continue from OUT.last.safetensors if present")
    train.set_defaults(run=cmd_train)

    decoder = commands.add_parser("train-decoder", help="train a family's decoder on the frozen shared encoder "
                                  "(features cached once)")
    decoder.add_argument("--model", required=True, help="a model over the shared encoder (fcn8s_lite0, unet_lite0, segnet_lite0)")
    decoder.add_argument("--data", required=True, help="dataset folder (images/, masks/, splits/)")
    decoder.add_argument("--train-split", default="train")
    decoder.add_argument("--score-split", nargs="*", default=["val"], help="splits scored at the end")
    decoder.add_argument("--hold-out", default=None, metavar="PREFIX",
                         help="leave the training ids starting with PREFIX out (e.g. a CamVid drive) and score them")
    decoder.add_argument("--scales", type=float, nargs="+", default=[0.75, 1.0, 1.25])
    decoder.add_argument("--cache", default="runs/encoded", help="folder of the cached encoder features")
    decoder.add_argument("--out", required=True)
    decoder.add_argument("--epochs", type=int, default=30)
    decoder.add_argument("--batch-size", type=int, default=4)
    decoder.add_argument("--crop", type=int, nargs=2, default=(288, 384), metavar=("H", "W"))
    decoder.add_argument("--lr", type=float, default=2e-3)
    decoder.add_argument("--seed", type=int, default=0)
    decoder.add_argument("--version", default="v1")
    decoder.set_defaults(run=cmd_train_decoder)

    evaluate = commands.add_parser("eval", help="score weights on a dataset split")
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--weights", default=None, help="a .safetensors file (default: the shipped weights)")
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--split", required=True)
    evaluate.add_argument("--base-size", type=_base_size, default=None, help=BASE_SIZE_HELP)
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(run=cmd_eval)

    predict = commands.add_parser("predict", help="segment images into palette-PNG masks and overlays")
    predict.add_argument("--model", required=True)
    predict.add_argument("--weights", default=None)
    predict.add_argument("--input", required=True, nargs="+")
    predict.add_argument("--out", required=True)
    predict.add_argument("--alpha", type=float, default=0.5, help="overlay opacity, 0-1")
    predict.add_argument("--base-size", type=_base_size, default=None, help=BASE_SIZE_HELP)
    predict.set_defaults(run=cmd_predict)

    bench = commands.add_parser("bench", help="latency and efficiency at 360x480")
    bench.add_argument("--all", action="store_true", help="every compact configuration, random weights")
    bench.add_argument("--runs", type=int, default=20)
    bench.add_argument("--base-size", type=_base_size, default=None, help=BASE_SIZE_HELP)
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(run=cmd_bench)

    finetune = commands.add_parser("finetune", help="fine-tune a model on a workspace's corrected samples")
    finetune.add_argument("--workspace", required=True)
    finetune.add_argument("--model", required=True)
    finetune.add_argument("--seconds", type=float, default=None,
                        help="training time budget (default, as in the app: 5 s per training sample, 40-120 s)")
    finetune.add_argument("--json", action="store_true")
    finetune.set_defaults(run=cmd_finetune)

    loop = commands.add_parser("bench-loop", help="simulate correct (fast learner) -> Fine-tune on a split and score it")
    loop.add_argument("--model", required=True)
    loop.add_argument("--data", required=True)
    loop.add_argument("--split", required=True)
    loop.add_argument("--n", type=int, default=10, help="number of images the simulated user corrects")
    loop.add_argument("--seconds", type=float, default=None,
                        help="training time budget (default, as in the app: 5 s per training sample, 40-120 s)")
    loop.add_argument("--pick", choices=("spread", "consecutive"), default="spread",
                      help="spread: evenly spaced ids (default); consecutive: the first N, one scene")
    loop.add_argument("--keep-workspace", default=None, help="use (and keep) this folder as the workspace")
    loop.add_argument("--start", type=int, default=0, help="with --pick consecutive: position of the first id")
    loop.add_argument("--seed", type=int, default=0, help="the fine-tune's random seed")
    loop.add_argument("--weights", default=None, help="start from this .safetensors instead of the shipped weights")
    loop.add_argument("--no-fast", action="store_true", help="no fast learner after each save (the button only)")
    loop.add_argument("--no-button", action="store_true", help="do not press Fine-tune after the saves")
    loop.add_argument("--learner", nargs="*", default=[], metavar="KEY=VALUE",
                      help="fast learner settings, e.g. seconds=2 continue_candidate=true")
    loop.add_argument("--job", nargs="*", default=[], metavar="KEY=VALUE",
                      help="Fine-tune job settings, e.g. top.distill=0.5 whole.lr=1e-3 encoder_after=0 "
                      "(keys from before the split, such as top_distill or lr, still work)")
    loop.add_argument("--json", action="store_true")
    loop.set_defaults(run=cmd_bench_loop)

    session = commands.add_parser("bench-session", help="simulate a labelling session: effort with and without the loop")
    session.add_argument("--model", required=True)
    session.add_argument("--data", required=True)
    session.add_argument("--split", required=True)
    session.add_argument("--images", type=int, default=40, help="images the simulated person works through")
    session.add_argument("--every", type=int, default=5, help="press Fine-tune after every K saves (0: never)")
    session.add_argument("--no-fast", action="store_true", help="no fast learner after each save (the button only)")
    session.add_argument("--learner", nargs="*", default=[], metavar="KEY=VALUE",
                         help="fast learner settings, e.g. seconds=2 continue_candidate=true")
    session.add_argument("--order", choices=("sequential", "spread", "shuffled", "uncertainty"), default="sequential")
    session.add_argument("--start", type=int, default=0,
                         help="--order sequential: position of the first id; shuffled: the shuffle's seed")
    session.add_argument("--seconds", type=float, default=None, help="fixed fine-tune budget (default: automatic)")
    session.add_argument("--seed", type=int, default=0, help="the fine-tunes' random seed")
    session.add_argument("--weights", default=None, help="start from this .safetensors instead of the shipped weights")
    session.add_argument("--job", nargs="*", default=[], metavar="KEY=VALUE",
                      help="Fine-tune job settings, e.g. top.distill=0.5 whole.lr=1e-3 encoder_after=0 "
                      "(keys from before the split, such as top_distill or lr, still work)")
    session.add_argument("--json", action="store_true")
    session.set_defaults(run=cmd_bench_session)

    strokes = commands.add_parser("bench-strokes", help="simulate a person who clicks until each image is 95 %% "
                                  "right: clicks per image with and without the fill-in from strokes")
    strokes.add_argument("--model", required=True)
    strokes.add_argument("--data", required=True)
    strokes.add_argument("--split", required=True)
    strokes.add_argument("--images", type=int, default=20, help="images the simulated person works through")
    strokes.add_argument("--order", choices=("sequential", "spread", "shuffled"), default="spread")
    strokes.add_argument("--start", type=int, default=0,
                         help="--order sequential: position of the first id; shuffled: the shuffle's seed")
    strokes.add_argument("--assist", choices=("on", "off"), default="on",
                         help="on: the editor fills in from the strokes; off: the live prediction plus the strokes")
    strokes.add_argument("--max-clicks", type=int, default=30, help="clicks after which the person gives up")
    strokes.add_argument("--stroke", nargs="*", default=[], metavar="KEY=VALUE",
                         help="fill-in settings, e.g. steps=30 keep=0.3")
    strokes.add_argument("--json", action="store_true")
    strokes.set_defaults(run=cmd_bench_strokes)

    importer = commands.add_parser("import", help="add images (files, folders, zips) to a workspace as unlabelled "
                                   "samples; a dataset folder or zip (images/ + masks/, or a VOC tree) with masks")
    importer.add_argument("--workspace", required=True, help="workspace folder (created if missing)")
    importer.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders or zips")
    importer.add_argument("--json", action="store_true",
                          help='last line: {"imported": n, "corrected": k, "skipped": [{"name", "reason"}]}')
    importer.set_defaults(run=cmd_import)

    exporter = commands.add_parser("export", help="write a workspace's corrected samples as VOC, COCO or the layout")
    exporter.add_argument("--workspace", required=True)
    exporter.add_argument("--format", required=True, choices=("voc", "coco", "layout"))
    exporter.add_argument("--out", required=True, help="a new folder, or a file ending in .zip")
    exporter.add_argument("--json", action="store_true")
    exporter.set_defaults(run=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, ImageError, WeightsError, JobBusy, ValueError, FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
