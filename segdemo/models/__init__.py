"""The model zoo: FCN, U-Net and SegNet, each registered by its builder's name."""

from segdemo.models.base import MIN_INPUT_SIZE, SegmentationModel
from segdemo.models.decoders import fcn, segnet, unet  # noqa: F401  (importing registers the builders)
from segdemo.models.registry import ModelSpec, build_model, get_spec, list_models, register_model, shipped_weights

__all__ = ["MIN_INPUT_SIZE", "ModelSpec", "SegmentationModel", "build_model", "get_spec", "list_models",
           "register_model", "shipped_weights"]
