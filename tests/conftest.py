"""Shared fixtures; the drawing helpers live in tests/drawing.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.drawing import write_dataset

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """8 training and 3 validation scenes of 72x96 pixels, CamVid-11 classes, no labels.json."""
    return write_dataset(tmp_path_factory.mktemp("tiny"))

