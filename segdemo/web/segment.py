"""Handlers of the Segment & correct tab: segment an upload, the editor's payload, the Views panel (overlay,
confidence, mask; opacity), the panels that name the image in the editor, and saving the corrected mask; plus the
drawn example images.

One image is current at a time: the one in the editor. Every handler that opens an image (Segment, Next image,
Open in editor) names it the same way (:attr:`Session.image_name`) in the Image box, the statuses and the editor.

A mixin of the app's handler class: it uses ``self.workspace(session)``, ``self.predictors``, ``self._view`` and
``self._legend`` from :class:`segdemo.web.state.AppState`, ``self.smart_payload`` from the labelling handlers and
``self.open_for_strokes`` from the stroke handlers, and ``self.claims``, ``self.holder``, ``self.close_claim``,
``self.opened_at`` and ``self.author_name`` from the team handlers.
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
from segdemo.priority import foreground
from segdemo.store import RevisionConflict, StoreError
from segdemo.web.models import offered_models
from segdemo.web.state import Session
from segdemo.web.team import conflict_line
from segdemo.weights import WeightsError

VIEWS = ("Overlay", "Confidence", "Mask")
EXAMPLES_DIR = Path(tempfile.gettempdir()) / "segdemo-examples"


EXAMPLES_NOTE = ("Drawn, because no street photo that may be shipped is at hand. The model learned from real "
                 "photos and errs on drawings: upload a photo to see what it can do.")


def ensure_examples(directory: Path = EXAMPLES_DIR) -> list[str]:
    """Three street scenes drawn by ``segdemo.ui.street_scene`` (written once, then reused); the file names say
    they are drawings."""
    paths = []
    for seed in range(3):
        path = directory / f"drawing-street-{seed + 1}.png"
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
    """Segment, the editor's payload, the Views panel, the panels naming the image and Save (mixed into the app's
    handler class)."""

    def model_dropdown(self, model: str, session: Session) -> gr.Dropdown:
        """The model dropdown relabelled for the session's workspace, keeping ``model`` chosen."""
        choices = self.models(session)
        names = [c.name for c in choices]
        return gr.Dropdown(choices=[(c.label, c.name) for c in choices], value=model if model in names else names[0])

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
            with foreground():
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
        same = session.image is not None and np.array_equal(session.image, rgb)
        reopened = same and bool(session.sample_id)  # the same sample (e.g. a queued image) keeps its id, name,
        if not reopened:  # claim and the revision its editor opened
            session.sample_id, session.source_name, session.from_queue = None, name, False
        self.close_claim(session, keep=session.sample_id)
        session.image, session.prediction, session.corrected = rgb, prediction.mask, None
        session.confidence = prediction.confidence
        session.model, session.version, session.token = model, predictor.version, uuid.uuid4().hex
        if not reopened:
            self.opened_at(session)
        height, width = prediction.mask.shape
        note = ""
        if predictor.version == "untrained":
            note = " · ⚠ no trained weights for this model yet: expect noise until it is fine-tuned"
        elif predictor.version.endswith("new head"):
            note = (" · classifier untrained for this label set: the editor shows no prediction; paint a stroke of "
                    "each class and the rest fills in")
        status = (f"**{model} · {predictor.version}** segmented **{session.image_name}** ({width}×{height}) in "
                  f"{ms:.0f} ms · mean confidence {float(prediction.confidence.mean()):.2f}{note}")
        caption = f"Share of pixels · {model} · {predictor.version}"
        return self._view(session), self._legend(session, caption), status, session

    def editor_payload(self, session: Session, segments: np.ndarray | None = None) -> str:
        """The painter's load payload for the session's image (corrected mask if re-opened, else prediction);
        ``segments``: its superpixels when computed already. The image opens for the fill-in from strokes; where
        the live classifier learned nothing (a new label set) the editor shows no prediction, only a hint."""
        if session is None or session.image is None or session.prediction is None:
            return ""
        smart = self.smart_payload(session, segments)
        strokes = self.open_for_strokes(session, smart["segments"])
        shown = session.prediction
        if strokes["cold"]:
            shown = np.full_like(session.prediction, self.workspace(session).labels.ignore_index)
        corrected = session.corrected if session.corrected is not None else shown
        title = f"{session.image_name} · {session.model} {session.version}"
        return ui.painter_payload(session.image, shown, corrected, self.workspace(session).labels,
                                  token=session.token, title=title, fill=strokes["fill"], cold=strokes["cold"],
                                  **smart)

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

    @staticmethod
    def image_chosen(session: Session) -> str:
        """Status after a new file lands in the Image box: it is not the current image until Segment opens it."""
        if session.image is None:
            return "Press **Segment** to open the image in the editor."
        return (f"New image chosen: press **Segment** to open it in the editor (the editor still shows "
                f"**{session.image_name}**).")

    def image_panels(self, session: Session, *, with_image: bool = True) -> tuple:
        """(Image box, Save status, Views panel) after an image was opened in the editor: all three name it, and
        the Image box shows it (``with_image``; Segment leaves the upload in place and only renames the box)."""
        if session is None or session.image is None:
            return gr.skip(), gr.skip(), gr.skip()
        name = session.image_name
        box = gr.Image(value=self._png_file(session.image, "image"), label=name) if with_image else gr.Image(
            label=name)
        return box, self.unsaved_status(session), gr.Image(label=f"View of {name}")

    @staticmethod
    def unsaved_status(session: Session) -> str:
        kind = "saved sample, re-opened" if session.corrected is not None else "not saved yet"
        return f"Editing **{session.image_name}** ({kind})."

    def _check_edit(self, painter_value: str, session: Session) -> ui.PainterValue:
        """The painter's mask (and painted pixels) for the session's image; ValueError with the user-facing reason
        when unusable."""
        if session is None or session.image is None or session.prediction is None:
            raise ValueError("Nothing to save yet: segment an image first.")
        value = ui.decode_painter_value(painter_value)
        if value.token and value.token != session.token:
            raise ValueError("The editor shows a different image than the one last segmented; segment it again "
                             "before saving.")
        if value.mask.shape != session.prediction.shape:
            raise ValueError(f"The edited mask is {value.mask.shape[1]}×{value.mask.shape[0]} but the image is "
                             f"{session.prediction.shape[1]}×{session.prediction.shape[0]}; nothing was saved.")
        if value.painted is not None and value.painted.shape != value.mask.shape:
            raise ValueError("The editor's record of painted pixels does not match its mask; nothing was saved.")
        return value

    def save(self, painter_value: str, session: Session) -> tuple[str, Session]:
        """Store image, prediction and the painter's mask → (one status line for the Save status, session).
        Never raises; a refused save warns and says why."""
        try:
            edit = self._check_edit(painter_value, session)
        except ValueError as err:
            gr.Warning(str(err))
            return f"⚠ {err}", session
        mask = edit.mask
        workspace = self.workspace(session)
        try:
            meta = workspace.save_sample(
                session.image, session.prediction, mask, model=session.model, weights_version=session.version,
                source_name=session.source_name, sample_id=session.sample_id, painted=edit.painted,
                author=self.author_name(session), expected_revision=session.revision)
        except RevisionConflict as conflict:
            session.sample_id, session.conflict = conflict.stored.id, conflict.stored
            gr.Warning(f"Not saved: {conflict}")
            return conflict_line(conflict), session
        except (StoreError, OSError) as err:
            gr.Warning(f"Not saved: {err}")
            return f"⚠ Not saved: {err}", session
        session.sample_id, session.corrected = meta.id, mask
        session.revision, session.conflict = meta.revision, None
        self.claims(workspace).release(self.holder(session), meta.id)
        self.start_learning(workspace, session.model)
        return self._saved_line(meta, session), session

    def _saved_line(self, meta, session: Session) -> str:
        """``✓ Saved <name> as <id> to <split> · corrected pixels · workspace counts · time``."""
        samples = self.workspace(session).list_samples()
        train = sum(s.split == "train" for s in samples)
        split = "held-out" if meta.split == "heldout" else "train"
        saved_as = "" if meta.id == session.image_name else f" as sample **{meta.id}**"
        return (f"✓ Saved **{session.image_name}**{saved_as} to the **{split}** split · "
                f"{meta.changed_pixels:,} pixels corrected ({meta.changed_fraction * 100:.2f}%) · workspace: "
                f"{ui.plural(len(samples), 'sample')} ({train} train, {len(samples) - train} held-out) · "
                f"{datetime.now():%H:%M:%S}")

    def segmented_panels(self, session: Session) -> tuple:
        """(Image box, Save status, Views panel) after Segment: the upload stays in the box, which now names
        the image."""
        return self.image_panels(session, with_image=False)

    def image_changed(self, image: Any, session: Session) -> str:
        """Status after the Image box changed: a file that is not the editor's image waits for Segment."""
        path, _ = _file_path(image)
        if not path or session is None:
            return gr.skip()
        try:
            same = session.image is not None and np.array_equal(read_rgb(path), session.image)
        except ImageError:
            same = False  # Segment will say what is wrong with it
        return gr.skip() if same else self.image_chosen(session)
