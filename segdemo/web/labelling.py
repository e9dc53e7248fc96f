"""Handlers for labelling a folder: import (cancellable), the queue (Next image, strategies, background scoring), the
smart tools' server side (superpixels and doubtful pixels in the editor payload, GrabCut on request) and exports.

A mixin of the app's handler class: it uses ``self.workspace(session)``, ``self.predictors``, ``self._view``,
``self._legend`` and ``self._view_dir`` from :class:`segdemo.web.state.AppState`, ``self.editor_payload`` from
the segment handlers and the queue claims (``self.claim_next``, ``self.held_elsewhere``) from the team handlers.
Each handler takes plain values and a Session and returns what the UI shows.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from segdemo import tools, ui
from segdemo.export import FORMATS, ExportError, zip_bytes
from segdemo.fileio import atomic_write_bytes
from segdemo.importer import describe, import_paths
from segdemo.lru import LruCache
from segdemo.priority import foreground
from segdemo.queue import STRATEGIES, Scorer, load_scores, queue_order
from segdemo.store import StoreError, Workspace
from segdemo.weights import WeightsError

EDITOR_MEMORY = 32
"""Images the GrabCut tool can still be asked about (the last ones opened in an editor, by token)."""
_BESIDE = ThreadPoolExecutor(max_workers=2, thread_name_prefix="segdemo-superpixels")
"""Superpixels are computed here while the model segments the same image (both release the GIL)."""


class LabellingHandlers:
    """Import, queue, smart tools and exports for the app (mixed into its handler class)."""

    def _init_labelling(self) -> None:
        self._scorers: dict[str, Scorer] = {}
        self._imports: dict[str, threading.Event] = {}
        self._opened: LruCache[str, np.ndarray] = LruCache(EDITOR_MEMORY)
        self._labelling_lock = threading.Lock()

    # -- the editor's smart tools ------------------------------------------------------------------------------

    def smart_payload(self, session, segments: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Superpixels (``segments`` when computed already) and doubtful-pixel outline for the session's image;
        remembers the image for GrabCut by the session's token."""
        self._opened.put(session.token, session.image)
        extra = {"segments": tools.superpixels(session.image) if segments is None else segments}
        if session.confidence is not None:
            extra["doubtful"] = tools.outline(tools.doubtful(session.confidence))
        return extra

    def grabcut_request(self, data: Any) -> dict:
        """The GrabCut tool's server call: ``{"token", "box": [x0, y0, x1, y1]}`` → ``{"mask": rle, "ms"}``, or
        ``{"error": message}``. The token names an image opened in an editor; nothing else is reachable."""
        if not isinstance(data, dict):
            return {"error": "bad request"}
        image = self._opened.get(str(data.get("token", "")))
        if image is None:
            return {"error": "this image is no longer open; open it again"}
        try:
            box = [int(v) for v in data.get("box", [])]
            if len(box) != 4:
                raise ValueError("a box is four numbers x0, y0, x1, y1")
            started = time.perf_counter()
            region = tools.grabcut(image, tuple(box))
        except (TypeError, ValueError) as err:
            return {"error": str(err)}
        return {"mask": list(ui.rle_encode(region)), "ms": round((time.perf_counter() - started) * 1000, 1)}

    # -- import ----------------------------------------------------------------------------------------------

    def import_files(self, files: list | None, model: str, session, progress=gr.Progress()) -> tuple[str, Any]:
        """Import uploaded files / zips → (status markdown, session); then scores the queue in the background.

        :meth:`cancel_import` stops it after the current image; what was imported stays and the status says so.
        """
        paths = [f if isinstance(f, str) else getattr(f, "name", None) or f.get("path") for f in (files or [])]
        if not paths:
            gr.Warning("Choose or drop image files or a zip first.")
            return "Choose or drop image files or a zip first.", session
        workspace = self.workspace(session)
        root, cancel = str(workspace.root), threading.Event()
        with self._labelling_lock:
            self._imports[root] = cancel
        try:
            progress(0, desc="importing")
            labelled_before = len(workspace.split_ids("train"))
            report = import_paths(workspace, paths, cancel=cancel, author=self.author_name(session),
                                  progress=lambda done, total, name: progress(done / max(1, total),
                                                                              desc=f"importing {name}"))
        finally:
            with self._labelling_lock:
                if self._imports.get(root) is cancel:
                    del self._imports[root]
        summary = describe(report)
        lines = [f"**{summary[:1].upper()}{summary[1:]}** · {datetime.now():%H:%M:%S}"]
        if report.imported:
            names = ", ".join(report.imported[:12]) + (f", … and {len(report.imported) - 12} more"
                                                      if len(report.imported) > 12 else "")
            lines.append(f"- imported: {names}")
        lines += [f"- skipped `{s.name}`: {s.reason}" for s in report.skipped[:20]]
        if len(report.skipped) > 20:
            lines.append(f"- … and {len(report.skipped) - 20} more")
        if report.imported and model:
            self.ensure_scoring(workspace, model)
            if len(workspace.split_ids("train")) > labelled_before:
                self.start_learning(workspace, model)
        return "\n".join(lines), session

    def cancel_import(self, session) -> None:
        """Stop the import running in the session's workspace after its current image (shown as a notice; the
        import's own status line then reports what was imported and that it was cancelled)."""
        root = str(self.workspace(session).root)
        with self._labelling_lock:
            cancel = self._imports.get(root)
        if cancel is None:
            gr.Info("No import is running.")
            return
        cancel.set()
        gr.Info("Cancelling the import after the current image; what was imported stays.")

    # -- the queue -------------------------------------------------------------------------------------------

    def ensure_scoring(self, workspace: Workspace, model: str) -> Scorer | None:
        """Start scoring the unlabelled samples with the live ``model`` unless that is done or running."""
        try:
            predictor = self.predictors.get(workspace, model)
        except (WeightsError, ValueError, StoreError):
            return None
        root = str(workspace.root)
        with self._labelling_lock:
            current = self._scorers.get(root)
            if current is not None and current.running:
                if (current.model, current.version) == (model, predictor.version):
                    return current
                current.cancel()
            scores = load_scores(workspace, model, predictor.version)
            if all(s.id in scores for s in workspace.list_unlabelled()):
                return current
            self._scorers[root] = scorer = Scorer(workspace, model, predictor).start()
            return scorer

    def cancel_scoring(self, session) -> str:
        scorer = self._scorers.get(str(self.workspace(session).root))
        if scorer is None or not scorer.running:
            return "No scoring is running."
        scorer.cancel()
        return "Scoring cancelled; the queue serves what was scored first, then import order."

    def queue(self, workspace: Workspace, model: str, strategy: str) -> tuple[list[str], dict[str, float], str]:
        """(ordered unlabelled ids, scores, version) for ``model``'s live version."""
        try:
            version = self.predictors.get(workspace, model).version if model else ""
        except (WeightsError, ValueError, StoreError):
            version = ""
        scores = load_scores(workspace, model) if model else {}
        ids = [s.id for s in workspace.list_unlabelled()]
        return queue_order(ids, strategy if strategy in STRATEGIES else "uncertainty", scores), scores, version

    EMPTY_QUEUE = ("No images queued. To label a folder image by image, import it on the **Dataset** tab; "
                   "**Next image** then opens each in turn.")

    def queue_status(self, model: str, strategy: str, session) -> str:
        workspace = self.workspace(session)
        order, scores, version = self.queue(workspace, model, strategy)
        if not order:
            return self.EMPTY_QUEUE
        scorer = self._scorers.get(str(workspace.root))
        scored = sum(i in scores for i in order)
        current = sum(i in order for i in load_scores(workspace, model, version))
        text = f"Queue: **{len(order)} unlabelled** · {STRATEGIES.get(strategy, strategy)} · "
        if strategy == "order" or current == len(order):
            text += f"{scored}/{len(order)} scored by {model} {version}"
        else:
            text += (f"{scored}/{len(order)} scored ({current} by the live {version}, the others by earlier "
                     "versions until they are scored again; unscored ones come last in import order)")
        if scorer is not None and scorer.running:
            text += f" · scoring… {scorer.state.done}/{scorer.state.total}"
        elsewhere = len(self.held_elsewhere(workspace, session) & set(order))
        if elsewhere:
            text += f" · **{elsewhere} open in {'another window' if elsewhere == 1 else 'other windows'}**"
        return text

    def queue_controls(self, model: str, strategy: str, session) -> tuple:
        """(queue status, "Save moves on" checkbox): the checkbox shows only while images are queued."""
        order = self.queue(self.workspace(session), model, strategy)[0]
        return self.queue_status(model, strategy, session), gr.Checkbox(visible=bool(order))

    def next_image(self, model: str, strategy: str, session) -> tuple:
        """Open the queue's next image, segmented by the live model → (view, legend, status, editor, queue
        status, Image box, Save status, session, tab). An empty queue only says so in the queue status."""
        workspace = self.workspace(session)
        order, scores, _ = self.queue(workspace, model, strategy)
        order = [i for i in order if i != session.sample_id] or order
        if not order:
            return (gr.skip(),) * 4 + (self.EMPTY_QUEUE, gr.skip(), gr.skip(), session, gr.skip())
        sample_id = self.claim_next(workspace, session, order)
        if sample_id is None:
            busy = (f"All {ui.plural(len(order), 'queued image')} are open in other windows; press **Next image** "
                    "again when one is saved or skipped.")
            return (gr.skip(), gr.skip(), busy, gr.skip(), self.queue_status(model, strategy, session), gr.skip(),
                    gr.skip(), session, gr.skip())
        meta = workspace.sample_meta(sample_id)
        try:
            if meta is None:
                raise StoreError(f"queued sample {sample_id} was deleted meanwhile")
            image = workspace.load_image(sample_id)
            with foreground():
                predictor = self.predictors.get(workspace, model)
                segments = _BESIDE.submit(tools.superpixels, image)
                started = time.perf_counter()
                prediction = predictor.predict(image)
                ms = (time.perf_counter() - started) * 1000
                segments = segments.result()
        except (StoreError, OSError, WeightsError, ValueError) as err:
            self.claims(workspace).release(self.holder(session), sample_id)
            gr.Warning(str(err))
            return (gr.skip(),) * 7 + (session, gr.skip())
        session.image, session.prediction, session.corrected = image, prediction.mask, None
        session.confidence = prediction.confidence
        session.model, session.version, session.source_name = model, predictor.version, meta.source_name
        session.sample_id, session.token, session.from_queue = sample_id, uuid.uuid4().hex, True
        session.revision, session.conflict = meta.mask_revision, None
        score = scores.get(sample_id)
        why = f"uncertainty {score:.3f}" if score is not None else "not scored yet"
        free = len(set(order) - self.held_elsewhere(workspace, session) - {sample_id})
        status = (f"**Next: {session.image_name}** (queued sample {sample_id}, {why}; {free} more in the "
                  f"queue) · segmented by **{model} · {predictor.version}** in {ms:.0f} ms")
        self.ensure_scoring(workspace, model)
        box, save_status, _ = self.image_panels(session)
        view = gr.Image(value=self._view(session), label=f"View of {session.image_name}")
        return (view, self._legend(session, f"Share of pixels · {model} · {predictor.version}"), status,
                self.editor_payload(session, segments), self.queue_status(model, strategy, session), box,
                save_status, session, gr.Tabs(selected="segment"))

    def save_then_next(self, move_on: bool, model: str, strategy: str, saved_status: str, session) -> tuple:
        """After a save: open the next queued image when "Save moves on" is ticked, the saved image came from the
        queue and more are queued; the Save status keeps the save's line and names the image opened. Otherwise
        changes nothing and says nothing (an uploaded image saved before an import stays in the editor)."""
        skip = (gr.skip(),) * 7 + (session, gr.skip())
        if (not move_on or not session.from_queue or session.corrected is None or not session.sample_id
                or session.conflict is not None):
            return skip
        if not [i for i in self.queue(self.workspace(session), model, strategy)[0] if i != session.sample_id]:
            return skip
        outputs = list(self.next_image(model, strategy, session))
        if isinstance(outputs[6], str):
            outputs[6] = f"{saved_status}\n\nMoved on: {outputs[6]}"
        outputs[8] = gr.skip()  # Save is on the Segment tab; a late answer must not pull the user off another tab
        return tuple(outputs)

    def samples_table(self, model: str, strategy: str, session) -> list[list[str]]:
        """One row per sample: id, state (unlabelled / open in another window / corrected / held out), queue
        position, uncertainty, who saved the latest revision of its mask."""
        workspace = self.workspace(session)
        order, scores, _ = self.queue(workspace, model, strategy)
        position = {sample_id: index + 1 for index, sample_id in enumerate(order)}
        elsewhere = self.held_elsewhere(workspace, session)
        rows = []
        for sample in workspace.list_all():
            state = "unlabelled" if not sample.labelled else ("held out" if sample.split == "heldout" else "corrected")
            if sample.id in elsewhere:
                state = "open in another window"
            score = scores.get(sample.id)
            author = (sample.author or "unknown") if sample.labelled else ""
            rows.append([sample.id, state, str(position.get(sample.id, "")), "" if score is None else f"{score:.3f}",
                         author])
        rows.sort(key=lambda r: (r[2] == "", int(r[2]) if r[2] else 0))
        return rows

    # -- export ----------------------------------------------------------------------------------------------

    def export(self, fmt: str, session) -> gr.File:
        """The workspace's corrected samples as a zip in ``fmt`` (voc, coco or layout) for download."""
        workspace = self.workspace(session)
        fmt = fmt if fmt in FORMATS else "layout"
        try:
            data = zip_bytes(workspace, fmt)
        except ExportError as err:
            gr.Warning(str(err))
            return gr.File(value=None, visible=False)
        path = Path(self._view_dir) / f"segdemo-{workspace.root.name}-{fmt}-{datetime.now():%Y%m%d-%H%M%S}.zip"
        atomic_write_bytes(path, data)
        for old in sorted(Path(self._view_dir).glob("segdemo-*.zip"), key=lambda p: p.stat().st_mtime)[:-3]:
            old.unlink(missing_ok=True)  # gradio serves its own copy; keep the last three here
        return gr.File(value=str(path), visible=True)
