"""segdemo: semantic segmentation you can correct and fine-tune, in one process.

The public API, re-exported from the modules that own it.

The words for the parts of a model, used the same way everywhere:

- **encoder**: the feature extractor at the bottom of a model (:mod:`segdemo.models.encoders`). The part a learner
  keeps frozen and the feature cache holds is the model's ``trunk()``: for the offered models exactly the shared
  EfficientNet-Lite0 encoder; for the compact ones the encoder and the decoder's early stages.
- **decoder**: what turns the encoder's maps into per-pixel class scores (:mod:`segdemo.models.decoders`), one per
  family.
- **classifier**: the layer that outputs one channel per class; replaced (``reset_classifier``) when the label set
  changes.
- **top**: what a learner trains (``top_modules()``; ``top()`` runs it on cached maps): each offered family's
  whole decoder, or a compact model's last stages and classifier.
- **trunk**: the rest of the model below the top (``trunk()``), frozen while the top learns.
"""

from segdemo.data import SegmentationDataset, split_ids
from segdemo.fileio import ImageError, read_rgb
from segdemo.inference import Prediction, Predictor
from segdemo.labels import CAMVID11, LabelSet, colorize, dataset_labels, mask_to_palette_image, overlay
from segdemo.learning.finetune import FinetuneJob, JobBusy
from segdemo.learning.finetune_settings import FinetuneSettings
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
