"""What every tab's handlers share: the per-browser-tab :class:`Session`, and :class:`AppState` (the open
workspaces, the predictor cache, the rendered views) that the per-tab handler mixins are combined with.

Handlers in ``segdemo.web`` take plain values and a Session and return what the UI shows; the Session is the only
per-tab state, everything on ``AppState`` is shared by all tabs and guarded by its lock where it changes.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from segdemo import ui
from segdemo.labels import LabelSet
from segdemo.models import list_models
from segdemo.store import SampleMeta, Workspace
from segdemo.web.models import ModelChoice, PredictorCache, model_catalogue

@dataclass
class Session:
    """What one browser tab is working on. ``token`` ties the editor's mask to the image it was drawn on;
    ``from_queue``: the image was opened by Next image (so Save may move on to the next one); ``revision``: the
    revision of the sample's mask the editor opened (0: none yet), which a Save must still find stored;
    ``conflict``: the newer sample a refused Save found, until the person chooses what to keep. ``key`` names the
    tab (Gradio's session hash, else made up) as the holder of its queue claim; ``user`` is the signed-in name and
    ``author`` the name set in the page."""

    workspace: str = ""
    image: np.ndarray | None = None
    prediction: np.ndarray | None = None
    corrected: np.ndarray | None = None
    confidence: np.ndarray | None = None
    model: str = ""
    version: str = ""
    source_name: str = ""
    sample_id: str | None = None
    from_queue: bool = False
    token: str = ""
    opacity: float = 0.5
    view: str = "Overlay"
    gallery_ids: list[str] = field(default_factory=list)
    selected: str | None = None
    revision: int = 0
    conflict: SampleMeta | None = None
    key: str = ""
    user: str = ""
    author: str = ""

    @property
    def image_name(self) -> str:
        """The name every panel gives the image in the editor: its file name, else its sample id."""
        return self.source_name or self.sample_id or "image"


class AppState:
    """The state the handler mixins share for one start-up workspace (``workspace_dir``) and the ones beside it."""

    def __init__(self, workspace_dir: str | Path) -> None:
        self.workspace_dir = Path(workspace_dir)
        self.predictors = PredictorCache()
        self._workspaces: dict[str, Workspace] = {}
        self._view_dir = Path(tempfile.mkdtemp(prefix="segdemo-views-"))
        self._view_files: list[Path] = []
        self._lock = threading.Lock()

    def workspace(self, session: Session | None = None) -> Workspace:
        """The session's workspace (the start-up one without a session), opened once and kept open."""
        root = str(Path(session.workspace if session and session.workspace else self.workspace_dir).resolve())
        with self._lock:
            if root not in self._workspaces:
                self._workspaces[root] = Workspace(root)
            return self._workspaces[root]

    def add_workspace(self, path: Path, labels: LabelSet) -> Workspace:
        """Create (or open, when its label set matches) the workspace at ``path``; StoreError when it cannot be."""
        with self._lock:
            self._workspaces[str(path)] = workspace = Workspace(path, labels=labels)
            return workspace

    def _versioned_models(self, session: Session | None = None) -> list[str]:
        """Models with fine-tuned versions in the session's workspace (offered besides one per family)."""
        workspace = self.workspace(session)
        return [m for m in list_models() if workspace.checkpoint_dir(m).is_dir() and workspace.versions(m)]

    def models(self, session: Session | None = None) -> list[ModelChoice]:
        """The model dropdown's entries for the session's workspace (default: the start-up one), with its figures."""
        return model_catalogue(self._versioned_models(session), self.workspace(session))

    def new_session(self) -> Session:
        return Session(workspace=str(self.workspace().root))

    def _png_file(self, array: np.ndarray, prefix: str) -> str:
        """``array`` as a PNG in the app's view folder (fast compression; the newest 64 are kept) → its path."""
        # Gradio would encode the array at PNG level 6 (~70 ms for 480x360); level 1 takes ~15 ms.
        path = self._view_dir / f"{prefix}-{uuid.uuid4().hex[:16]}.png"
        Image.fromarray(array).save(path, format="PNG", compress_level=1)
        with self._lock:
            self._view_files.append(path)
            while len(self._view_files) > 64:  # gradio has copied older ones into its cache by now
                self._view_files.pop(0).unlink(missing_ok=True)
        return str(path)

    def _view(self, session: Session) -> str | None:
        """The session's overlay / confidence / mask view as a PNG file for the Views panel."""
        if session.image is None:
            return None
        mask = session.corrected if session.corrected is not None else session.prediction
        view = {"Confidence": "confidence", "Mask": "mask"}.get(session.view, "overlay")
        array = ui.render_view(session.image, mask, session.confidence, self.workspace(session).labels,
                               view=view, alpha=session.opacity)
        return self._png_file(array, "view")

    def _legend(self, session: Session, caption: str = "") -> str:
        """The legend HTML: each class's share of the session's current mask."""
        mask = session.corrected if session.corrected is not None else session.prediction
        return ui.legend_html(self.workspace(session).labels, mask, caption=caption)
