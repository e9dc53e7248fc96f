"""Model cost and speed: parameters, GFLOPs at 360x480, end-to-end latency, and the machine's conv ceiling.

GFLOPs count 2 FLOPs per multiply-accumulate (torch's FlopCounterMode), the same unit as GFLOP/s.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from segdemo.inference import Predictor
from segdemo.models import SegmentationModel

BENCH_SIZE = (360, 480)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_model_params(name: str) -> int:
    """Parameters of a registered model in its default configuration, built on the meta device (no memory)."""
    from segdemo.models import build_model

    with torch.device("meta"):
        return count_params(build_model(name))


def count_gflops(model: torch.nn.Module, size: tuple[int, int] = BENCH_SIZE) -> float:
    """Forward GFLOPs for one RGB image of ``size`` (H, W), at the model's own internal resolution."""
    was_training = model.training
    model.eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, model.in_channels, *size))
    model.train(was_training)
    return counter.get_total_flops() / 1e9


def latency_ms(predictor: Predictor, *, runs: int = 20, warmup: int = 3, size: tuple[int, int] = BENCH_SIZE) -> list[float]:
    """Wall-clock milliseconds per call, RGB uint8 array → class mask, decode-free."""
    image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    for _ in range(warmup):
        predictor.predict_arrays([image])
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        predictor.predict_arrays([image])
        times.append((time.perf_counter() - started) * 1000)
    return times


def conv_ceiling_gflops(*, runs: int = 20, size: tuple[int, int] = (180, 240)) -> float:
    """GFLOP/s of a 3x3 convolution, 64 → 64 channels, channels_last: what this machine's conv kernels reach."""
    weight = torch.randn(64, 64, 3, 3).contiguous(memory_format=torch.channels_last)
    x = torch.randn(1, 64, *size).contiguous(memory_format=torch.channels_last)
    flops = 2 * 9 * 64 * 64 * size[0] * size[1]
    with torch.inference_mode():
        for _ in range(3):
            F.conv2d(x, weight, padding=1)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            F.conv2d(x, weight, padding=1)
            times.append(time.perf_counter() - started)
    return flops / float(np.median(times)) / 1e9


PEER = "lraspp_mobilenet_v3_large"
"""torchvision's fastest segmentation model, timed beside the zoo as the speed yardstick (random weights)."""


class PeerModel(SegmentationModel):
    """torchvision's LR-ASPP MobileNetV3-Large behind the segdemo model interface (logits at input size)."""

    def __init__(self, *, num_classes: int = 11) -> None:
        from torchvision.models.segmentation import lraspp_mobilenet_v3_large

        super().__init__(num_classes=num_classes, in_channels=3, stride=1)
        self.net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]


def peer_predictor() -> Predictor:
    """The yardstick as a Predictor, resized and normalised like the zoo (11 classes, random weights)."""
    return Predictor(PeerModel(), name=PEER, version="random")


def bench_row(name: str, predictor: Predictor, ceiling: float, *, runs: int = 20) -> dict:
    """One row of ``segdemo bench``: cost, p50/p90 latency, achieved GFLOP/s and efficiency vs the ceiling,
    for a 360x480 image resized as the predictor resizes it."""
    scale = predictor.model_scale(*BENCH_SIZE)
    gflops = count_gflops(predictor.model, (round(BENCH_SIZE[0] * scale), round(BENCH_SIZE[1] * scale)))
    times = latency_ms(predictor, runs=runs)
    p50, p90 = float(np.percentile(times, 50)), float(np.percentile(times, 90))
    achieved = gflops / (p50 / 1000)
    return {
        "model": name, "version": predictor.version, "params": count_params(predictor.model),
        "gflops": round(gflops, 3), "ms_p50": round(p50, 2), "ms_p90": round(p90, 2),
        "achieved_gflops_per_s": round(achieved, 2), "ceiling_gflops_per_s": round(ceiling, 2),
        "efficiency": round(achieved / ceiling, 3), "threads": torch.get_num_threads(), "base_size": predictor.base_size,
    }
