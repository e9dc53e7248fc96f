"""segdemo: semantic segmentation you can correct and fine-tune, in one process.

The public API, re-exported from the modules that own it.
"""

from segdemo.data import SegmentationDataset, split_ids
from segdemo.fileio import ImageError, read_rgb
from segdemo.inference import Prediction, Predictor
from segdemo.labels import CAMVID11, LabelSet, colorize, dataset_labels, mask_to_palette_image, overlay
from segdemo.learning.finetune import FinetuneJob, FinetuneSettings, JobBusy
from segdemo.learning.learner import FastLearner, LearnerSettings, learn
from segdemo.learning.train import TrainConfig, evaluate, fit
from segdemo.metrics import ConfusionMatrix
from segdemo.models import build_model, list_models, register_model, shipped_weights
from segdemo.promotion.live import load_live
from segdemo.store import StoreError, Workspace
from segdemo.weights import WeightsEntry, WeightsError, save_weights

__all__ = [
    "CAMVID11", "ConfusionMatrix", "FastLearner", "FinetuneJob", "FinetuneSettings", "ImageError", "JobBusy",
    "LabelSet", "LearnerSettings",
    "Prediction", "Predictor", "SegmentationDataset", "StoreError", "TrainConfig", "WeightsEntry", "WeightsError",
    "Workspace", "build_model", "colorize", "dataset_labels", "evaluate", "fit", "learn", "list_models", "load_live",
    "mask_to_palette_image", "overlay", "read_rgb", "register_model", "save_weights", "shipped_weights",
    "split_ids",
]
