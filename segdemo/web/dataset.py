"""Handlers of the Dataset tab's saved samples: the gallery (one corrected-mask thumbnail per sample), selecting,
re-opening a sample in the editor and deleting it. Import, the samples table and export are in
``segdemo.web.labelling``.

A mixin of the app's handler class: it uses ``self.workspace(session)``, ``self._view``, ``self._legend`` and
``self._lock`` from :class:`segdemo.web.state.AppState` and ``self.close_claim`` from the team handlers. Each
handler takes plain values and a Session and returns what the UI shows.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import gradio as gr
import numpy as np

from segdemo import ui
from segdemo.store import StoreError
from segdemo.web.state import Session


class DatasetHandlers:
    """The saved-samples gallery: list, select, open in the editor, delete (mixed into the app's handler class)."""

    def _init_dataset(self) -> None:
        self._thumbs: dict[tuple[str, str, float], np.ndarray] = {}

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
            items.append((thumb, f"{sample.id} · {split} · {sample.changed_fraction * 100:.1f}% fixed"))
            ids.append(sample.id)
        with self._lock:  # forget thumbnails of deleted or re-saved samples
            live_keys = {(str(workspace.root), s.id, s.updated) for s in samples}
            for key in [k for k in self._thumbs if k[0] == str(workspace.root) and k not in live_keys]:
                del self._thumbs[key]
        session.gallery_ids = ids
        if session.selected not in ids:
            session.selected = None
        train = sum(s.split == "train" for s in samples)
        summary = (f"**{ui.plural(len(samples), 'saved sample')}** ({train} train, {len(samples) - train} "
                   f"held-out) in `{workspace.root}` · "
                   f"label set *{workspace.labels.name}* ({workspace.labels.num_classes} classes)")
        if not samples:
            summary += "\n\nNothing saved yet: segment an image, correct it in the editor and press **Save**."
        return items, summary, session

    def select_sample(self, index: int | None, session: Session) -> tuple[str, Session]:
        """Remember the gallery's ``index``-th sample as selected → (its description, session)."""
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
                f"predicted by {meta.model} {meta.weights_version} · revision {meta.mask_revision} saved by "
                f"{meta.author or 'unknown'} {created}"), session

    def open_sample(self, session: Session) -> tuple:
        """Load the selected sample into the editor → (overlay, legend, status, session, tab selection)."""
        if not session.selected:
            gr.Warning("Select a sample in the gallery first.")
            return gr.skip(), gr.skip(), gr.skip(), session, gr.skip()
        return self.open_saved(session.selected, session)

    def open_saved(self, sample_id: str, session: Session) -> tuple:
        """Load a saved sample's latest revision into the editor → (overlay, legend, status, session, tab
        selection); the tab's queue claim ends."""
        try:
            image, prediction, corrected, meta = self.workspace(session).load_sample(sample_id)
        except (StoreError, OSError) as err:
            gr.Warning(str(err))
            return gr.skip(), gr.skip(), gr.skip(), session, gr.skip()
        self.close_claim(session)
        session.image, session.prediction, session.corrected, session.confidence = image, prediction, corrected, None
        session.model, session.version, session.source_name = meta.model, meta.weights_version, meta.source_name
        session.sample_id, session.token, session.from_queue = meta.id, uuid.uuid4().hex, False
        session.revision, session.conflict = meta.mask_revision, None
        if session.view == "Confidence":
            session.view = "Overlay"
        saved = datetime.fromtimestamp(meta.updated).strftime("%H:%M:%S")
        status = (f"Re-opened **{session.image_name}** (sample {meta.id}, revision {meta.mask_revision} saved by "
                  f"{meta.author or 'unknown'} at {saved}, prediction by {meta.model} · {meta.weights_version}); "
                  "edit it in the editor and **Save** to store the next revision of the same sample.")
        return (self._view(session), self._legend(session, f"Share of pixels · corrected mask of {meta.id}"),
                status, session, gr.Tabs(selected="segment"))

    def delete_selected(self, session: Session) -> tuple[str, Session]:
        """Delete the selected sample → (status markdown, session); a later Save of its image makes a new sample."""
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
