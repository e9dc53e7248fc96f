"""segdemo in the browser: segment an image, correct the mask, save it, fine-tune on the corrections.

``python app.py`` serves on http://127.0.0.1:7860 (``--host``, ``--port``, ``--workspace DIR``, ``--auth
user:password`` or ``SEGDEMO_AUTH``, ``--share``). This file holds layout and wiring only: the work is done by
``segdemo`` (inference, store, finetune) and the pure view helpers in ``segdemo.ui``. Importing it has no side
effects: ``build_demo(workspace)`` makes the app, and the module-level ``demo`` is built on first access.

Events: two public API endpoints, ``/predict`` (image file, model name → overlay, legend HTML, status text) and
``/save`` (corrected mask as ``segdemo.ui.painter_value`` JSON → status; it saves the session's last segmented
image); every other event is private.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import io
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from segdemo import ui
from segdemo.bench import count_model_params
from segdemo.fileio import ImageError, atomic_write_bytes, read_rgb
from segdemo.finetune import FinetuneJob, FinetuneSettings, JobBusy, active_job, load_live
from segdemo.inference import Predictor, configure_threads
from segdemo.labels import LabelSet
from segdemo.models import list_models, shipped_weights
from segdemo.store import SHIPPED, StoreError, Workspace
from segdemo.queue import STRATEGIES
from segdemo.web.labelling import LabellingHandlers
from segdemo.weights import WeightsError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_WORKSPACE = "workspace"
MAX_FILE_SIZE = "25mb"
FINETUNE_SECONDS = float(os.environ.get("SEGDEMO_FINETUNE_SECONDS", 0))
MODEL_PREFERENCE = ("fcn8s_lite0", "unet_lite0", "segnet_lite0", "unet_compact", "fcn8s_compact", "segnet_compact")
"""Default model when no shipped weights say otherwise (best val mIoU among shipped compact models wins)."""
EXAMPLES_DIR = Path(tempfile.gettempdir()) / "segdemo-examples"
THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate",
                       font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],
                       font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
VIEWS = ("Overlay", "Confidence", "Mask")

# -- models ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    """One dropdown entry: ``label`` shows params, speed and val mIoU from the weights' metadata."""

    name: str
    label: str
    trained: bool
    miou: float | None = None


def _model_label(name: str) -> tuple[str, bool, float | None]:
    entry = shipped_weights(name)
    meta = entry.meta if entry is not None else {}
    params = meta.get("params")
    if params is None:
        params = count_model_params(name)
    parts = [name]
    if params:
        parts.append(f"{params / 1e6:.1f}M params")
    ms = (meta.get("bench") or {}).get("ms_p50")
    if ms:
        parts.append(f"{ms:.0f} ms")
    metrics = (meta.get("metrics") or {})
    miou = (metrics.get("val") or next(iter(metrics.values()), {}) or {}).get("miou") if metrics else None
    if entry is None:
        parts.append("untrained")
    elif miou is not None:
        parts.append(f"val mIoU {miou:.3f}")
    return " · ".join(parts), entry is not None, miou


def _val_miou(name: str) -> float:
    entry = shipped_weights(name)
    return ((entry.meta.get("metrics") or {}).get("val") or {}).get("miou", -1.0) if entry is not None else -1.0


def offered_models(extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """One model per family: the one whose shipped weights score best on val (without shipped weights, the
    compact configs); plus ``extra`` (models with workspace versions)."""
    names = []
    for family in ("fcn", "unet", "segnet"):
        trained = [name for name in list_models(family=family) if shipped_weights(name) is not None]
        if trained:
            names.append(max(trained, key=_val_miou))
    if not names:
        names = list_models(config="compact")
    return names + [name for name in extra if name not in names]


def model_catalogue(extra: list[str] | tuple[str, ...] = ()) -> list[ModelChoice]:
    """Dropdown entries for :func:`offered_models`; untrained ones are marked "untrained"."""
    choices = []
    for name in offered_models(extra):
        label, trained, miou = _model_label(name)
        choices.append(ModelChoice(name, label, trained, miou))
    return choices


def default_model(choices: list[ModelChoice]) -> str:
    trained = [c for c in choices if c.trained and c.miou is not None]
    if trained:
        return max(trained, key=lambda c: c.miou).name
    names = [c.name for c in choices]
    return next((n for n in MODEL_PREFERENCE if n in names), names[0])


class PredictorCache:
    """Predictors per (workspace, model, live version, shipped sha): a promotion or rollback changes the key."""

    def __init__(self) -> None:
        self._cache: dict[tuple, Predictor] = {}
        self._lock = threading.Lock()

    def get(self, workspace: Workspace, model: str) -> Predictor:
        shipped = shipped_weights(model)
        key = (str(workspace.root), model, workspace.live_version(model), shipped.sha256 if shipped else None)
        with self._lock:
            predictor = self._cache.get(key)
            if predictor is None:
                predictor = load_live(workspace, model).predictor(workspace, model)
                for old in [k for k in self._cache if k[:2] == key[:2]]:
                    del self._cache[old]
                self._cache[key] = predictor
            return predictor


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


# -- per-browser-session state --------------------------------------------------------------------------------


@dataclass
class Session:
    """What one browser tab is working on. ``token`` ties the editor's mask to the image it was drawn on."""

    workspace: str = ""
    image: np.ndarray | None = None
    prediction: np.ndarray | None = None
    corrected: np.ndarray | None = None
    confidence: np.ndarray | None = None
    model: str = ""
    version: str = ""
    source_name: str = ""
    sample_id: str | None = None
    token: str = ""
    opacity: float = 0.5
    view: str = "Overlay"
    gallery_ids: list[str] = field(default_factory=list)
    selected: str | None = None


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


def _fmt_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


# -- the app's handlers -------------------------------------------------------------------------------------------


class SegdemoApp(LabellingHandlers):
    """Handlers for one workspace. Each takes plain values and a Session and returns what the UI shows."""

    def __init__(self, workspace_dir: str | Path = DEFAULT_WORKSPACE, *, finetune_seconds: float | None = None,
                 finetune_settings: FinetuneSettings | None = None) -> None:
        self.workspace_dir = Path(workspace_dir)
        self.finetune_seconds = float(finetune_seconds if finetune_seconds is not None else FINETUNE_SECONDS)
        self.finetune_settings = finetune_settings or FinetuneSettings()
        self.predictors = PredictorCache()
        self._workspaces: dict[str, Workspace] = {}
        self._jobs: dict[str, FinetuneJob] = {}
        self._reported: set[int] = set()
        self._thumbs: dict[tuple[str, str, float], np.ndarray] = {}
        self._view_dir = Path(tempfile.mkdtemp(prefix="segdemo-views-"))
        self._view_files: list[Path] = []
        self._lock = threading.Lock()
        self._init_labelling()
        self.workspace()  # create / open it now so a bad path fails at start-up

    # -- helpers ---------------------------------------------------------------------------------------------

    def workspace(self, session: Session | None = None) -> Workspace:
        root = str(Path(session.workspace if session and session.workspace else self.workspace_dir).resolve())
        with self._lock:
            if root not in self._workspaces:
                self._workspaces[root] = Workspace(root)
            return self._workspaces[root]

    def _versioned_models(self, session: Session | None = None) -> list[str]:
        workspace = self.workspace(session)
        return [m for m in list_models() if workspace.checkpoint_dir(m).is_dir() and workspace.versions(m)]

    def models(self) -> list[ModelChoice]:
        return model_catalogue(self._versioned_models())

    def new_session(self) -> Session:
        return Session(workspace=str(self.workspace().root))

    def _view(self, session: Session) -> str | None:
        """The session's overlay / confidence / mask view as a PNG file (fast compression) for the Result image."""
        if session.image is None:
            return None
        mask = session.corrected if session.corrected is not None else session.prediction
        view = {"Confidence": "confidence", "Mask": "mask"}.get(session.view, "overlay")
        array = ui.render_view(session.image, mask, session.confidence, self.workspace(session).labels,
                               view=view, alpha=session.opacity)
        # Gradio would encode the array at PNG level 6 (~70 ms for 480x360); level 1 takes ~15 ms.
        path = self._view_dir / f"view-{uuid.uuid4().hex[:16]}.png"
        Image.fromarray(array).save(path, format="PNG", compress_level=1)
        with self._lock:
            self._view_files.append(path)
            while len(self._view_files) > 64:  # gradio has copied older ones into its cache by now
                self._view_files.pop(0).unlink(missing_ok=True)
        return str(path)

    def _legend(self, session: Session, caption: str = "") -> str:
        mask = session.corrected if session.corrected is not None else session.prediction
        return ui.legend_html(self.workspace(session).labels, mask, caption=caption)

    # -- segment ----------------------------------------------------------------------------------------------

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
        session.opacity = float(opacity)
        session.view = view if view in VIEWS else "Overlay"
        return self._view(session), session

    # -- save ------------------------------------------------------------------------------------------------

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

    # -- dataset ---------------------------------------------------------------------------------------------

    def dataset_view(self, session: Session) -> tuple[list, str, Session]:
        """(gallery items, summary markdown, session): one corrected-mask overlay per saved sample."""
        workspace = self.workspace(session)
        samples = workspace.list_samples()
        items, ids = [], []
        for sample in samples:
            key = (str(workspace.root), sample.id, sample.updated)
            thumb = self._thumbs.get(key)
            if thumb is None:
                try:
                    image, _, corrected, _ = workspace.load_sample(sample.id)
                except (StoreError, OSError, ValueError):
                    continue
                thumb = self._thumbs[key] = ui.thumbnail(image, corrected, workspace.labels)
            split = "held-out" if sample.split == "heldout" else "train"
            items.append((thumb, f"{sample.id} · {split} · {sample.changed_fraction * 100:.1f}% corrected"))
            ids.append(sample.id)
        with self._lock:  # forget thumbnails of deleted or re-saved samples
            live_keys = {(str(workspace.root), s.id, s.updated) for s in samples}
            for key in [k for k in self._thumbs if k[0] == str(workspace.root) and k not in live_keys]:
                del self._thumbs[key]
        session.gallery_ids = ids
        if session.selected not in ids:
            session.selected = None
        train = sum(s.split == "train" for s in samples)
        summary = (f"**{len(samples)} samples** ({train} train, {len(samples) - train} held-out) in "
                   f"`{workspace.root}` · "
                   f"label set *{workspace.labels.name}* ({workspace.labels.num_classes} classes)")
        if not samples:
            summary += "\n\nNothing saved yet: segment an image, correct it in the editor and press **Save**."
        return items, summary, session

    def select_sample(self, index: int | None, session: Session) -> tuple[str, Session]:
        if index is None or not (0 <= index < len(session.gallery_ids)):
            session.selected = None
            return "Select a sample in the gallery.", session
        session.selected = session.gallery_ids[index]
        meta = self.workspace(session).sample_meta(session.selected)
        if meta is None:
            return f"Sample {session.selected} no longer exists.", session
        created = datetime.fromtimestamp(meta.updated).strftime("%Y-%m-%d %H:%M")
        return (f"Selected **{meta.id}** · {meta.width}×{meta.height} · "
                f"{'held-out' if meta.split == 'heldout' else 'train'} · {meta.changed_pixels:,} px corrected · "
                f"predicted by {meta.model} {meta.weights_version} · saved {created}"), session

    def open_sample(self, session: Session) -> tuple:
        """Load the selected sample into the editor → (overlay, legend, status, session, tab selection)."""
        if not session.selected:
            gr.Warning("Select a sample in the gallery first.")
            return gr.skip(), gr.skip(), gr.skip(), session, gr.skip()
        try:
            image, prediction, corrected, meta = self.workspace(session).load_sample(session.selected)
        except (StoreError, OSError) as err:
            gr.Warning(str(err))
            return gr.skip(), gr.skip(), gr.skip(), session, gr.skip()
        session.image, session.prediction, session.corrected, session.confidence = image, prediction, corrected, None
        session.model, session.version, session.source_name = meta.model, meta.weights_version, meta.source_name
        session.sample_id, session.token = meta.id, uuid.uuid4().hex
        if session.view == "Confidence":
            session.view = "Overlay"
        status = (f"Re-opened **{meta.id}** (prediction by {meta.model} · {meta.weights_version}); edit it below and "
                  "**Save** to update the same sample.")
        return (self._view(session), self._legend(session, f"Share of pixels · corrected mask of {meta.id}"),
                status, session, gr.Tabs(selected="segment"))

    def delete_selected(self, session: Session) -> tuple[str, Session]:
        if not session.selected:
            gr.Warning("Select a sample in the gallery first.")
            return "Select a sample in the gallery first.", session
        try:
            self.workspace(session).delete_sample(session.selected)
        except StoreError as err:
            gr.Warning(str(err))
            return f"⚠ {err}", session
        deleted, session.selected = session.selected, None
        if session.sample_id == deleted:
            session.sample_id = None
        return f"Deleted **{deleted}**.", session

    # -- fine-tune -------------------------------------------------------------------------------------------

    def start_finetune(self, model: str, seconds: float | None, session: Session) -> tuple[str, gr.Timer]:
        """Start a background fine-tune of ``model``; a second press while one runs only warns."""
        workspace = self.workspace(session)
        running = active_job(workspace)
        if running is not None:
            message = f"A fine-tune of {running.model} is already running; wait for it or press Cancel."
            gr.Warning(message)
            return self._progress_html(running), gr.Timer(active=True)
        if not model:
            gr.Warning("Choose a model on the Segment tab first.")
            return gr.skip(), gr.skip()
        budget = self.finetune_seconds if seconds is None else float(seconds)
        settings = dataclasses.replace(self.finetune_settings, seconds=budget or None)
        job = FinetuneJob(workspace, model, settings)
        try:
            job.start()
        except JobBusy as err:
            gr.Warning(str(err))
            return gr.skip(), gr.Timer(active=True)
        except StoreError as err:
            message = f"{str(err)[0].upper()}{str(err)[1:]}."
            gr.Warning(message)
            return f'<div class="sd-note">⚠ {html.escape(message)}</div>', gr.Timer(active=False)
        train = job.samples()[0]
        with self._lock:
            self._jobs[str(workspace.root)] = job
        gr.Info(f"Fine-tuning {model} for up to {settings.budget(len(train)):.0f} s on {len(train)} samples; "
                "segmentation keeps working.")
        return self._progress_html(job), gr.Timer(active=True)

    def cancel_finetune(self, session: Session) -> str:
        job = active_job(self.workspace(session))
        if job is None:
            gr.Info("No fine-tune is running.")
            return gr.skip()
        job.cancel()
        return self._progress_html(job, note="cancelling…")

    def current_job(self, session: Session) -> FinetuneJob | None:
        workspace = self.workspace(session)
        return active_job(workspace) or self._jobs.get(str(workspace.root))

    @staticmethod
    def _progress_html(job: FinetuneJob | None, note: str = "") -> str:
        if job is None:
            return '<div class="sd-note">No fine-tune has run in this session yet.</div>'
        state = job.state
        percent = 100.0 * (1.0 if state.status == "done" else state.progress)
        head = {"running": "Running", "done": "Finished", "failed": "Failed", "cancelled": "Cancelled",
                "idle": "Idle"}.get(state.status, state.status)
        timing = f"{_fmt_seconds(state.elapsed())} elapsed"
        if state.status == "running" and state.progress > 0.02:
            timing += f" · about {_fmt_seconds(state.remaining())} left"
        message = note or state.message
        return (f'<div class="sd-ft-state" data-status="{state.status}"><b>{head}</b> · {job.model} · '
                f'{percent:.0f}% · {timing}<div class="sd-progress"><div style="width:{percent:.1f}%"></div></div>'
                f'<div class="sd-note">{html.escape(message)}</div></div>')

    def loss_frame(self, job: FinetuneJob | None) -> pd.DataFrame:
        losses = list(job.state.losses) if job is not None else []
        return pd.DataFrame({"step": pd.Series([s for s, _ in losses], dtype="int64"),
                             "loss": pd.Series([v for _, v in losses], dtype="float64")})

    def result_view(self, model: str, session: Session) -> tuple[str, list[list[str]] | None]:
        """(summary markdown, rows) of the last fine-tune of ``model``: this session's job or the newest version."""
        job = self.current_job(session)
        if job is not None and job.model == model and job.state.status in ("done", "failed", "cancelled"):
            state = job.state
            if state.status == "failed":
                return f"⚠ Fine-tune failed: {state.message}", None
            result = state.result
            return f"**{state.message}**", ui.result_rows(result.before, result.after)
        versions = self.workspace(session).versions(model) if model else []
        if versions:
            entry = versions[-1]
            metrics = entry.meta.get("metrics", {})
            before, after = metrics.get("heldout_before"), metrics.get("heldout")
            if before and after:
                why = (entry.meta.get("guard") or {}).get("explanation")
                return (f"Last fine-tune: **{model} {entry.version}** (from {entry.meta.get('parent', '?')}), "
                        f"held-out mIoU {before['miou']:.3f} → {after['miou']:.3f}"
                        + (f"; {why}" if why else "")), ui.result_rows(before, after)
        return "No fine-tune result yet.", None

    def versions_view(self, model: str, session: Session) -> tuple[list[list[str]], gr.Dropdown]:
        """The version table (shipped + v1, v2, ...; live marked) and the choices for "make live"."""
        if not model:
            return [], gr.Dropdown(choices=[], value=None)
        workspace = self.workspace(session)
        live = workspace.live_version(model)
        shipped = shipped_weights(model)
        rows = []
        if shipped is not None:
            val = (shipped.meta.get("metrics") or {}).get("val", {}).get("miou")
            rows.append([SHIPPED, f"shipped {shipped.version}", "", "–" if val is None else f"{val:.3f} (val)", "",
                         "● live" if live == SHIPPED else ""])
        else:
            rows.append([SHIPPED, "untrained", "", "–", "", "● live" if live == SHIPPED else ""])
        for entry in workspace.versions(model):
            metrics = entry.meta.get("metrics", {})
            before, after = metrics.get("heldout_before", {}), metrics.get("heldout", {})
            created = entry.meta.get("created")
            rows.append([entry.version, f"fine-tuned from {entry.meta.get('parent', '?')}",
                         "–" if "miou" not in before else f"{before['miou']:.3f}",
                         "–" if "miou" not in after else f"{after['miou']:.3f} (held-out)",
                         datetime.fromtimestamp(created).strftime("%m-%d %H:%M") if created else "",
                         "● live" if live == entry.version else ""])
        choices = [(f"{r[0]} — {r[1]}{' (live)' if r[5] else ''}", r[0]) for r in rows]
        return rows, gr.Dropdown(choices=choices, value=live)

    def make_live(self, model: str, version: str | None, session: Session) -> str:
        if not model or not version:
            gr.Warning("Choose a version first.")
            return gr.skip()
        try:
            self.workspace(session).set_live(model, version)
        except StoreError as err:
            gr.Warning(str(err))
            return f"⚠ {err}"
        gr.Info(f"{model}: {version} is live; the next Segment uses it.")
        return f"{model}: **{version}** is now live; the next Segment uses it."

    def trend_frame(self, session: Session) -> pd.DataFrame:
        """Share of pixels corrected per sample, in save order (fewer corrections = a better model)."""
        samples = self.workspace(session).list_samples()
        return pd.DataFrame({"sample": list(range(1, len(samples) + 1)),
                             "% pixels corrected": [round(s.changed_fraction * 100, 3) for s in samples],
                             "version": [s.weights_version for s in samples]})

    def poll(self, model: str, session: Session) -> tuple:
        """Timer tick: progress, loss curve; when the job ends also result, versions, trend, and stop the timer."""
        job = self.current_job(session)
        if job is None:
            return (self._progress_html(None), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                    gr.Timer(active=False))
        progress, losses = self._progress_html(job), self.loss_frame(job)
        if job.state.status == "running":
            return progress, losses, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        summary, rows = self.result_view(job.model, session)
        versions, dropdown = self.versions_view(model, session)
        self.ensure_scoring(self.workspace(session), job.model)  # a promoted version scores the queue again
        return (progress, losses, summary, gr.Dataframe(value=rows, visible=rows is not None), versions, dropdown,
                self.trend_frame(session), gr.Timer(active=False))

    def finetune_panel(self, model: str, session: Session) -> tuple:
        """Everything the fine-tune tab shows, for page load and model changes."""
        job = self.current_job(session)
        summary, rows = self.result_view(model, session)
        versions, dropdown = self.versions_view(model, session)
        workspace = self.workspace(session)
        train, heldout = len(workspace.split_ids("train")), len(workspace.split_ids("heldout"))
        intro = (f"Fine-tunes **{model or '–'}** (the model chosen on the Segment tab) on this workspace's "
                 f"**{train} train** samples and measures it on the **{heldout} held-out** ones; the new version "
                 "goes live only if held-out mIoU does not drop.")
        running = job is not None and job.state.status == "running"
        return (intro, self._progress_html(job), self.loss_frame(job), summary,
                gr.Dataframe(value=rows, visible=rows is not None), versions, dropdown, self.trend_frame(session),
                gr.Timer(active=running))

    # -- workspaces and label sets ------------------------------------------------------------------------

    def labels_view(self, session: Session) -> list[list[str]]:
        labels = self.workspace(session).labels
        rows = [[str(i), (str(i + 1) if i < 9 else ("0" if i == 9 else "")), name, color]
                for i, (name, color) in enumerate(zip(labels.names, labels.hex_colors()))]
        rows.append([str(labels.ignore_index), "", "void (ignored)", "#000000"])
        return rows

    def workspace_choices(self) -> list[tuple[str, str]]:
        """The start-up workspace and the ones created beside it from the app (``<workspace>-<name>``)."""
        base = self.workspace_dir.resolve()
        paths = [base] + sorted(p for p in base.parent.glob(f"{base.name}-*") if (p / "labels.json").is_file())
        choices = []
        for path in paths:
            try:
                labels = self.workspace(Session(workspace=str(path))).labels
            except (StoreError, ValueError):
                continue
            choices.append((f"{path.name} · {labels.name} ({labels.num_classes} classes)", str(path)))
        return choices

    def workspace_view(self, session: Session) -> tuple:
        """(info markdown, label table, workspace dropdown) for the Label set tab."""
        workspace = self.workspace(session)
        labels = workspace.labels
        info = (f"Working in `{workspace.root}` · label set **{labels.name}**: {labels.num_classes} classes. "
                "Masks store "
                "the class index; **255 = void** (ignored in training and metrics). Keys 1–9 and 0 pick the first "
                "ten classes in the editor.")
        return (info, ui.labels_table_html(labels),
                gr.Dropdown(choices=self.workspace_choices(), value=str(workspace.root)))

    def _switched(self, session: Session, message: str) -> tuple:
        """Outputs after a workspace change: the session forgets its image; legend and editor follow the labels."""
        session.image = session.prediction = session.corrected = session.confidence = None
        session.sample_id, session.token, session.selected, session.gallery_ids = None, "", None, []
        labels = self.workspace(session).labels
        info, table, dropdown = self.workspace_view(session)
        return (message, info, table, dropdown, ui.legend_html(labels), "", None,
                "Workspace switched: upload an image and press **Segment**.", session)

    def switch_workspace(self, path: str | None, session: Session) -> tuple:
        """Point this browser session at another workspace listed by :meth:`workspace_choices`."""
        allowed = {value for _, value in self.workspace_choices()}
        if not path or path not in allowed:
            gr.Warning("Choose one of the listed workspaces.")
            return (gr.skip(),) * 8 + (session,)
        session.workspace = path
        return self._switched(session, f"Switched to `{path}`.")

    def create_workspace(self, name: str, classes: str, session: Session) -> tuple:
        """Create ``<workspace>-<name>`` with the typed classes and switch this session to it."""
        slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in (name or "").strip().lower()).strip("-_")[:40]
        if not slug:
            gr.Warning("Give the new workspace a name (letters, digits, '-' or '_').")
            return (gr.skip(),) * 8 + (session,)
        try:
            labels = ui.parse_classes(classes, name=slug)
        except ValueError as err:
            gr.Warning(f"Classes not understood: {err}")
            return (f"⚠ Classes not understood: {err}",) + (gr.skip(),) * 7 + (session,)
        base = self.workspace_dir.resolve()
        path = base.parent / f"{base.name}-{slug}"
        try:
            with self._lock:
                self._workspaces[str(path)] = Workspace(path, labels=labels)
        except StoreError as err:
            gr.Warning(str(err))
            return (f"⚠ {err}",) + (gr.skip(),) * 7 + (session,)
        session.workspace = str(path)
        return self._switched(session, f"Created `{path}` with {labels.num_classes} classes and switched to it. "
                                       "The models' classifiers start untrained for these classes: correct a few "
                                       "masks, then fine-tune.")


# -- layout and wiring -------------------------------------------------------------------------------------------


class SegdemoBlocks(gr.Blocks):
    """gr.Blocks whose launch() defaults to the app's theme, CSS and upload limit (Gradio 6 takes them there)."""

    def launch(self, *args, **kwargs):  # type: ignore[override]
        kwargs.setdefault("theme", THEME)
        kwargs.setdefault("css", ui.APP_CSS)
        kwargs.setdefault("max_file_size", MAX_FILE_SIZE)
        kwargs.setdefault("show_error", True)
        kwargs.setdefault("footer_links", ["api", "settings"])
        return super().launch(*args, **kwargs)


def build_demo(workspace_dir: str | Path = DEFAULT_WORKSPACE, *, finetune_seconds: float | None = None,
               finetune_settings: FinetuneSettings | None = None) -> gr.Blocks:
    """The whole app for one workspace. Creates the workspace folder; loads no model until the first Segment.

    ``finetune_seconds``: the fine-tune budget the page starts with (default ``SEGDEMO_FINETUNE_SECONDS`` or 0,
    automatic);
    ``finetune_settings``: the other fine-tune settings (defaults of ``FinetuneSettings``).
    """
    app = SegdemoApp(workspace_dir, finetune_seconds=finetune_seconds, finetune_settings=finetune_settings)
    choices = app.models()
    labels: LabelSet = app.workspace().labels
    first_model = default_model(choices)
    private = {"api_visibility": "private"}

    def grabcut(data):
        return app.grabcut_request(data)

    with SegdemoBlocks(title="segdemo · segment, correct, fine-tune", analytics_enabled=False,
                       delete_cache=(1800, 3600)) as demo:
        session = gr.State(app.new_session())
        demo.segdemo_app = app  # for tests and benchmarks
        with gr.Row(elem_classes="sd-header"):
            gr.Markdown("# segdemo\nSegment an image, correct the mask with a brush, save it as training data "
                        "and fine-tune the model on your corrections, all in this page.")
        with gr.Tabs(selected="segment") as tabs:
            with gr.Tab("Segment & correct", id="segment"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=300):
                        image_in = gr.Image(type="filepath", image_mode=None, label="Image",
                                            sources=["upload", "clipboard"], height=280, elem_id="image-input")
                        gr.Examples(ensure_examples(), inputs=image_in, label="Examples (synthetic street scenes)")
                        model = gr.Dropdown([(c.label, c.name) for c in choices], value=first_model, label="Model",
                                            info="params · CPU latency · mIoU on the CamVid validation split",
                                            elem_id="model-select")
                        segment_btn = gr.Button("Segment", variant="primary", elem_id="segment-btn")
                        with gr.Row():
                            next_btn = gr.Button("Next image (N)", elem_id="next-btn", scale=1)
                            strategy = gr.Radio([(label, key) for key, label in STRATEGIES.items()],
                                                value="uncertainty", label="Queue order", elem_id="queue-strategy",
                                                scale=2)
                        queue_info = gr.Markdown("", elem_id="queue-status")
                        status = gr.Markdown("Upload an image or pick an example, then press **Segment**.",
                                             elem_id="segment-status", elem_classes="sd-status")
                    with gr.Column(scale=3, min_width=360):
                        overlay_out = gr.Image(label="Result", type="filepath", format="png", interactive=False,
                                               height=420, elem_id="overlay", buttons=["download", "fullscreen"])
                        with gr.Row():
                            opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Overlay opacity",
                                                elem_id="opacity")
                            view = gr.Radio(list(VIEWS), value="Overlay", label="View", elem_id="view-toggle",
                                            info="Confidence: per-pixel certainty (yellow high, purple low)")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=4, min_width=480):
                        gr.Markdown("### Correct the mask\nPick a class (click it in the bar or the legend, or press "
                                    "1–9 / 0), paint over mistakes, then **Save**. The eraser puts the model's "
                                    "prediction back; *void* marks pixels to ignore.")
                        editor = gr.HTML("", html_template=ui.PAINTER_TEMPLATE, js_on_load=ui.PAINTER_JS,
                                         elem_id="editor", label="Editor", min_height=160,
                                         server_functions=[grabcut])
                        with gr.Row():
                            save_btn = gr.Button("Save corrected mask", variant="primary", elem_id="save-btn",
                                                 scale=1)
                            move_on = gr.Checkbox(True, label="Save moves on to the next image", elem_id="save-next",
                                                  scale=1)
                            save_status = gr.Markdown("", elem_id="save-status", elem_classes="sd-status")
                    with gr.Column(scale=1, min_width=300):
                        gr.Markdown("### Classes")
                        legend = gr.HTML(ui.legend_html(labels), js_on_load=ui.LEGEND_JS, elem_id="legend")

            with gr.Tab("Dataset", id="dataset") as dataset_tab:
                with gr.Row(equal_height=False):
                    import_files = gr.File(label="Import images (many files, or a zip; a dataset folder zipped "
                                                 "with images/ + masks/ or a VOC tree brings its masks)",
                                           file_count="multiple", type="filepath", height=120,
                                           elem_id="import-files", scale=3)
                    with gr.Column(scale=2):
                        import_status = gr.Markdown("", elem_id="import-status")
                        dataset_queue = gr.Markdown("", elem_id="dataset-queue")
                        cancel_score_btn = gr.Button("Stop scoring", size="sm", elem_id="score-cancel-btn")
                samples = gr.Dataframe(headers=["sample", "state", "queue #", "uncertainty"], interactive=False,
                                       max_height=260, elem_id="samples-table")
                dataset_summary = gr.Markdown(elem_id="dataset-summary")
                gallery = gr.Gallery(label="Saved samples (corrected mask over the image)", columns=6, height=360,
                                     allow_preview=False, object_fit="contain", elem_id="dataset-gallery")
                selection = gr.Markdown("Select a sample in the gallery.", elem_id="dataset-selection")
                with gr.Row():
                    open_btn = gr.Button("Open in editor", elem_id="open-btn")
                    delete_btn = gr.Button("Delete selected", variant="stop", elem_id="delete-btn")
                    export_format = gr.Radio(["layout", "voc", "coco"], value="layout", label="Export format",
                                             elem_id="export-format")
                    export_btn = gr.Button("Export dataset (.zip)", elem_id="export-btn")
                export_file = gr.File(label="Dataset zip", visible=False, interactive=False, height=80,
                                      elem_id="export-file")
                gr.Markdown("*layout*: `images/`, `masks/` (palette PNGs: pixel value = class index, 255 = void), "
                            "`predictions/`, `splits/` and `labels.json`, ready for `python -m segdemo train`; *voc*: "
                            "`VOCdevkit/VOC2012` (train = train split, val = held-out); *coco*: `annotations.json` "
                            "(one RLE annotation per class per image) and `images/`. Unlabelled images are left out.",
                            elem_classes="sd-note")

            with gr.Tab("Fine-tune", id="finetune") as finetune_tab:
                ft_intro = gr.Markdown(elem_id="finetune-intro")
                with gr.Row():
                    budget = gr.Slider(0, 600, value=app.finetune_seconds, step=5,
                                       label="Training budget (seconds; 0 = automatic: 5 s per training sample, "
                                             "40-120 s)",
                                       elem_id="finetune-seconds", scale=2)
                    finetune_btn = gr.Button("Fine-tune", variant="primary", elem_id="finetune-btn", scale=1)
                    cancel_btn = gr.Button("Cancel", variant="stop", elem_id="cancel-btn", scale=1)
                ft_progress = gr.HTML(app._progress_html(None), elem_id="finetune-progress", js_on_load=None)
                with gr.Row(equal_height=False):
                    with gr.Column():
                        loss_plot = gr.LinePlot(app.loss_frame(None), x="step", y="loss",
                                                title="Training loss", height=260, elem_id="loss-plot")
                    with gr.Column():
                        trend_plot = gr.LinePlot(app.trend_frame(app.new_session()), x="sample", y="% pixels corrected",
                                                 title="Pixels corrected per sample (save order)", height=260,
                                                 x_axis_format="d", x_title="sample (save order)",
                                                 elem_id="trend-plot")
                ft_summary = gr.Markdown("No fine-tune result yet.", elem_id="finetune-summary")
                ft_table = gr.Dataframe(headers=["held-out metric", "before", "after", "change"], visible=False,
                                        interactive=False, elem_id="finetune-result", max_height=420)
                gr.Markdown("### Versions")
                versions_table = gr.Dataframe(headers=["version", "origin", "held-out mIoU before", "mIoU",
                                                       "created", "live"], interactive=False, elem_id="versions")
                with gr.Row():
                    version_pick = gr.Dropdown([], label="Version", elem_id="version-select", scale=3)
                    live_btn = gr.Button("Make live (promote / roll back)", elem_id="make-live-btn", scale=1)
                live_status = gr.Markdown("", elem_id="live-status")
                timer = gr.Timer(1.0, active=False)

            with gr.Tab("Label set", id="labels") as labels_tab:
                workspace_info = gr.Markdown(elem_id="workspace-info")
                label_table = gr.HTML(ui.labels_table_html(labels), elem_id="label-table")
                with gr.Row():
                    workspace_pick = gr.Dropdown(app.workspace_choices(), value=str(app.workspace().root),
                                                 label="Workspace", elem_id="workspace-select", scale=3)
                    switch_btn = gr.Button("Switch", elem_id="switch-btn", scale=1)
                with gr.Accordion("Start a new workspace with your own classes", open=False):
                    new_name = gr.Textbox(label="Name", placeholder="potholes", elem_id="new-workspace-name",
                                          info="created beside the current workspace as <workspace>-<name>")
                    new_classes = gr.Textbox(label="Classes", lines=6, elem_id="new-workspace-classes",
                                             placeholder="road #804080\npothole #ff0000\ncrack\nbackground",
                                             info="one per line: name, optionally a colour (#rrggbb or r, g, b); "
                                                  "or JSON {\"classes\": [{\"name\", \"color\"}]}")
                    create_btn = gr.Button("Create and switch", variant="primary", elem_id="create-workspace-btn")
                workspace_status = gr.Markdown(elem_id="workspace-status")

        # -- wiring ------------------------------------------------------------------------------------------
        segment_event = segment_btn.click(
            app.segment, [image_in, model, session], [overlay_out, legend, status, session], api_name="predict",
            api_description="Segment an image: returns the class-colour overlay, the legend (HTML) and a status line.",
            preprocess=False, show_progress_on=overlay_out, concurrency_limit=2, concurrency_id="inference")
        segment_event.success(app.editor_payload, session, editor, show_progress="hidden", **private)
        for control in (opacity, view):
            control.change(app.rerender, [opacity, view, session], [overlay_out, session], show_progress="hidden",
                           trigger_mode="always_last", **private)
        saved = save_btn.click(app.save, [editor, session], [save_status, session], js=ui.SAVE_JS,
                               api_name="save", concurrency_limit=2, concurrency_id="store",
                               api_description="Save the last segmented image of this session with a corrected "
                                               "mask (JSON made by segdemo.ui.painter_value); returns the status.")
        saved.then(app.refresh_view, session, [overlay_out, legend], show_progress="hidden", **private)
        saved.then(app.dataset_view, session, [gallery, dataset_summary, session], show_progress="hidden", **private)

        dataset_tab.select(app.dataset_view, session, [gallery, dataset_summary, session], **private)
        dataset_tab.select(app.samples_table, [model, strategy, session], samples, **private)
        dataset_tab.select(app.queue_status, [model, strategy, session], dataset_queue, **private)

        next_outputs = [overlay_out, legend, status, editor, queue_info, session, tabs]
        next_btn.click(app.next_image, [model, strategy, session], next_outputs, concurrency_id="inference",
                       concurrency_limit=2, **private)
        saved.then(app.save_then_next, [move_on, model, strategy, session], next_outputs, show_progress="hidden",
                   **private)
        strategy.change(app.queue_status, [model, strategy, session], queue_info, **private)
        imported = import_files.upload(app.import_files, [import_files, model, session], [import_status, session],
                                       concurrency_id="import", concurrency_limit=1, show_progress_on=import_status,
                                       **private)
        imported.then(app.samples_table, [model, strategy, session], samples, **private)
        imported.then(app.queue_status, [model, strategy, session], dataset_queue, **private)
        imported.then(app.queue_status, [model, strategy, session], queue_info, **private)
        cancel_score_btn.click(app.cancel_scoring, session, dataset_queue, **private)

        def on_gallery_select(evt: gr.SelectData, state: Session):
            return app.select_sample(evt.index, state)

        gallery.select(on_gallery_select, session, [selection, session], **private)
        open_btn.click(app.open_sample, session, [overlay_out, legend, status, session, tabs], **private).success(
            app.editor_payload, session, editor, show_progress="hidden", **private)
        delete_btn.click(app.delete_selected, session, [selection, session], **private).then(
            app.dataset_view, session, [gallery, dataset_summary, session], **private)
        export_btn.click(app.export, [export_format, session], export_file, concurrency_id="store", **private)

        panel_outputs = [ft_intro, ft_progress, loss_plot, ft_summary, ft_table, versions_table, version_pick,
                         trend_plot, timer]
        finetune_tab.select(app.finetune_panel, [model, session], panel_outputs, **private)
        model.change(app.finetune_panel, [model, session], panel_outputs, **private)
        finetune_btn.click(app.start_finetune, [model, budget, session], [ft_progress, timer],
                           concurrency_id="finetune", **private)
        cancel_btn.click(app.cancel_finetune, session, ft_progress, **private)
        timer.tick(app.poll, [model, session],
                   [ft_progress, loss_plot, ft_summary, ft_table, versions_table, version_pick, trend_plot, timer],
                   show_progress="hidden", concurrency_limit=4, concurrency_id="poll", **private)
        live_btn.click(app.make_live, [model, version_pick, session], live_status, **private).then(
            app.finetune_panel, [model, session], panel_outputs, **private)
        demo.load(app.finetune_panel, [model, session], panel_outputs, **private)
        workspace_outputs = [workspace_info, label_table, workspace_pick]
        labels_tab.select(app.workspace_view, session, workspace_outputs, **private)
        switched_outputs = [workspace_status, *workspace_outputs, legend, editor, overlay_out, status, session]
        switch_btn.click(app.switch_workspace, [workspace_pick, session], switched_outputs, **private)
        create_btn.click(app.create_workspace, [new_name, new_classes, session], switched_outputs, **private)
    return demo


_DEMO: gr.Blocks | None = None


def __getattr__(name: str) -> Any:
    """``app.demo`` is built on first access (``gradio app.py`` reload mode), never at import."""
    global _DEMO
    if name == "demo":
        if _DEMO is None:
            _DEMO = build_demo(os.environ.get("SEGDEMO_WORKSPACE", DEFAULT_WORKSPACE))
        return _DEMO
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- command line --------------------------------------------------------------------------------------------


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``user:password`` → (user, password); None when empty; ValueError when malformed."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("--auth / SEGDEMO_AUTH must look like user:password")
    return user, password


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="segdemo: segment, correct and fine-tune in the browser")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to serve on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--workspace", default=os.environ.get("SEGDEMO_WORKSPACE", DEFAULT_WORKSPACE),
                        help="folder for saved corrections and fine-tuned versions (default ./workspace)")
    parser.add_argument("--auth", default=os.environ.get("SEGDEMO_AUTH"),
                        help="require a login, user:password (or set SEGDEMO_AUTH)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--finetune-seconds", type=float, default=None,
                        help="default fine-tune budget in seconds (default 0 = automatic: 5 s per training "
                             "sample, 40-120 s)")
    args = parser.parse_args(argv)
    try:
        auth = parse_auth(args.auth)
    except ValueError as err:
        parser.error(str(err))
    if not is_loopback(args.host) and auth is None:
        print(f"WARNING: serving on {args.host} without --auth: anyone who can reach this address can use the app, "
              "read and delete the saved samples. Pass --auth user:password or set SEGDEMO_AUTH.", file=sys.stderr)
    configure_threads()
    try:
        demo = build_demo(args.workspace, finetune_seconds=args.finetune_seconds)
    except StoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    demo.queue(default_concurrency_limit=2)
    demo.launch(server_name=args.host, server_port=args.port, auth=auth, share=args.share,
                max_file_size=MAX_FILE_SIZE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
