"""Handlers of the Segment & correct tab: segment an upload, the editor's payload, the Result view (overlay,
confidence, mask; opacity), and saving the corrected mask; plus the synthetic example images.

A mixin of the app's handler class: it uses ``self.workspace(session)``, ``self.predictors``, ``self._view`` and
``self._legend`` from :class:`segdemo.web.state.AppState` and ``self.smart_payload`` from the labelling handlers.
Each handler takes plain values and a Session and returns what the UI shows.
"""

from __future__ import annotations

import io
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from segdemo import ui
from segdemo.fileio import ImageError, atomic_write_bytes, read_rgb
from segdemo.store import StoreError
from segdemo.web.models import offered_models
from segdemo.web.state import Session
from segdemo.weights import WeightsError

VIEWS = ("Overlay", "Confidence", "Mask")
EXAMPLES_DIR = Path(tempfile.gettempdir()) / "segdemo-examples"


def ensure_examples(directory: Path = EXAMPLES_DIR) -> list[str]:
    """Three synthetic street scenes drawn by ``segdemo.ui.street_scene`` (written once, then reused)."""
    paths = []
    for seed in range(3):
        path = directory / f"street-{seed + 1}.png"
        if not path.is_file():
            buffer = io.BytesIO()
            Image.fromarray(ui.street_scene(seed)).save(buffer, format="PNG")
            atomic_write_bytes(path, buffer.getvalue())
        paths.append(str(path))
    return paths


def _file_path(image: Any) -> tuple[str | None, str]:
    """An upload as handed over without preprocessing (FileData dict), a path, or None → (path, display name)."""
    if image is None:
        return None, ""
    if isinstance(image, dict):
        path = image.get("path")
        return path, str(image.get("orig_name") or (Path(path).name if path else ""))
    if isinstance(image, (str, Path)):
        return str(image), Path(image).name
    raise ImageError("unsupported upload")


class SegmentHandlers:
    """Segment, the editor's payload, the Result view and Save (mixed into the app's handler class)."""

    def segment(self, image: Any, model: str, session: Session | None = None) -> tuple:
        """Image file + model name → (overlay PNG path, legend HTML, status markdown, session).

        Raises gr.Error with a user-facing message for a missing, unreadable, too small or too large image.
        """
        session = session or self.new_session()
        path, name = _file_path(image)
        if not path:
            raise gr.Error("Upload an image first (PNG, JPEG, WebP, BMP or TIFF).", title="No image")
        if not model:
            raise gr.Error("Choose a model first.", title="No model")
        workspace = self.workspace(session)
        offered = offered_models(self._versioned_models(session))
        if model not in offered:
            raise gr.Error(f"Unknown model {model!r}; choose one of: {', '.join(offered)}.", title="No such model")
        try:
            rgb = read_rgb(path)
            predictor = self.predictors.get(workspace, model)
            started = time.perf_counter()
            prediction = predictor.predict(rgb)
            ms = (time.perf_counter() - started) * 1000
        except ImageError as err:
            raise gr.Error(f"{name or 'This file'}: {err}", title="Not a usable image") from None
        except WeightsError as err:
            raise gr.Error(f"The weights of {model} cannot be used: {err}", title="Model unavailable") from None
        except ValueError as err:  # unknown model, image smaller than the model's minimum
            raise gr.Error(f"{name or 'This image'}: {err}", title="Cannot segment") from None
        session.image, session.prediction, session.corrected = rgb, prediction.mask, None
        session.confidence = prediction.confidence
        session.model, session.version, session.source_name = model, predictor.version, name
        session.sample_id, session.token = None, uuid.uuid4().hex
        height, width = prediction.mask.shape
        note = ""
        if predictor.version == "untrained":
            note = " · ⚠ no trained weights for this model yet: expect noise until it is fine-tuned"
        elif predictor.version.endswith("new head"):
            note = " · ⚠ classifier untrained for this label set: correct a few masks, then fine-tune"
        status = (f"**{model} · {predictor.version}** segmented *{name or 'image'}* ({width}×{height}) in "
                  f"{ms:.0f} ms · mean confidence {float(prediction.confidence.mean()):.2f}{note}")
        caption = f"Share of pixels · {model} · {predictor.version}"
        return self._view(session), self._legend(session, caption), status, session

    def editor_payload(self, session: Session, segments: np.ndarray | None = None) -> str:
        """The painter's load payload for the session's image (corrected mask if re-opened, else prediction);
        ``segments``: its superpixels when computed already."""
        if session is None or session.image is None or session.prediction is None:
            return ""
        corrected = session.corrected if session.corrected is not None else session.prediction
        title = f"{session.sample_id or session.source_name or 'image'} · {session.model} {session.version}"
        return ui.painter_payload(session.image, session.prediction, corrected, self.workspace(session).labels,
                                  token=session.token, title=title, **self.smart_payload(session, segments))

    def refresh_view(self, session: Session) -> tuple:
        """(view, legend) of the session's current mask: after a save they show the corrected mask."""
        if session is None or session.image is None:
            return gr.skip(), gr.skip()
        what = "corrected mask" if session.corrected is not None else f"{session.model} · {session.version}"
        return self._view(session), self._legend(session, f"Share of pixels · {what}")

    def rerender(self, opacity: float, view: str, session: Session) -> tuple:
        """(view, session) after the opacity slider or the view toggle moved; an unknown view shows the overlay."""
        session.opacity = float(opacity)
        session.view = view if view in VIEWS else "Overlay"
        return self._view(session), session

    def save(self, painter_value: str, session: Session) -> tuple[str, Session]:
        """Store image, prediction and the painter's mask; returns (status markdown, session). Never raises."""
        if session is None or session.image is None or session.prediction is None:
            gr.Warning("Nothing to save yet: segment an image first.")
            return "⚠ Nothing to save yet: segment an image first.", session
        try:
            value = ui.decode_painter_value(painter_value)
        except ValueError as err:
            gr.Warning(str(err))
            return f"⚠ {err}", session
        if value.token and value.token != session.token:
            message = "The editor shows a different image than the one last segmented; segment it again before saving."
            gr.Warning(message)
            return f"⚠ {message}", session
        if value.mask.shape != session.prediction.shape:
            message = (f"The edited mask is {value.mask.shape[1]}×{value.mask.shape[0]} but the image is "
                       f"{session.prediction.shape[1]}×{session.prediction.shape[0]}; nothing was saved.")
            gr.Warning(message)
            return f"⚠ {message}", session
        workspace = self.workspace(session)
        try:
            meta = workspace.save_sample(session.image, session.prediction, value.mask, model=session.model,
                                         weights_version=session.version, source_name=session.source_name,
                                         sample_id=session.sample_id)
        except StoreError as err:
            gr.Warning(str(err))
            return f"⚠ Not saved: {err}", session
        except OSError as err:
            gr.Warning(f"Not saved: {err}")
            return f"⚠ Not saved: {err}", session
        session.sample_id, session.corrected = meta.id, value.mask
        samples = workspace.list_samples()
        train = sum(s.split == "train" for s in samples)
        split = "held-out" if meta.split == "heldout" else "train"
        status = (f"✓ Saved **{meta.id}** to the **{split}** split · {meta.changed_pixels:,} pixels corrected "
                  f"({meta.changed_fraction * 100:.2f}%) · workspace: {len(samples)} samples "
                  f"({train} train, {len(samples) - train} held-out) · {datetime.now():%H:%M:%S}")
        return status, session
