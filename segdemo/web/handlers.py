"""The app's handler object: every tab's handler mixin over the shared :class:`segdemo.web.state.AppState`.

Where each tab's handlers live: ``segment.py`` (Segment & correct: segment, editor payload, views, save),
``strokes.py`` (the editor's fill-in from strokes),
``learning.py`` (the fast learner after each save), ``labelling.py`` (import, the queue, the smart tools,
export), ``dataset.py`` (the saved-samples gallery),
``finetune_tab.py`` (the job, results, versions), ``workspaces.py`` (label sets and workspaces) and ``team.py``
(several people on one workspace: names, queue claims, save conflicts, revision history).
"""

from __future__ import annotations

from pathlib import Path

from segdemo.learning.finetune_settings import FinetuneSettings
from segdemo.learning.learner import LearnerSettings
from segdemo.web.dataset import DatasetHandlers
from segdemo.web.finetune_tab import FinetuneHandlers
from segdemo.web.labelling import LabellingHandlers
from segdemo.web.learning import LearningHandlers
from segdemo.web.segment import SegmentHandlers
from segdemo.web.state import AppState
from segdemo.web.strokes import StrokeHandlers
from segdemo.web.team import TeamHandlers
from segdemo.web.workspaces import WorkspaceHandlers

DEFAULT_WORKSPACE = "workspace"


class SegdemoApp(SegmentHandlers, StrokeHandlers, LearningHandlers, LabellingHandlers, DatasetHandlers,
                 FinetuneHandlers, WorkspaceHandlers, TeamHandlers, AppState):
    """Handlers for one workspace. Each takes plain values and a Session and returns what the UI shows.

    Opens (or creates) ``workspace_dir`` at once, so a bad path fails at start-up; raises StoreError then.
    ``finetune_seconds``: the budget the slider starts at (default ``SEGDEMO_FINETUNE_SECONDS`` or 0, automatic).
    ``learn_after_save``: run the fast learner after each Save (off only in tests that count versions);
    ``learner_settings``: its settings (default ``LearnerSettings()``: 3 s per update).
    ``claim_minutes``: how long a queued image stays held by a window that does nothing with it (default 10).
    """

    def __init__(self, workspace_dir: str | Path = DEFAULT_WORKSPACE, *, finetune_seconds: float | None = None,
                 finetune_settings: FinetuneSettings | None = None, learn_after_save: bool = True,
                 learner_settings: LearnerSettings | None = None, claim_minutes: float | None = None) -> None:
        AppState.__init__(self, workspace_dir)
        self.learn_after_save = learn_after_save
        self.learner_settings = learner_settings
        self._init_labelling()
        self._init_strokes()
        self._init_dataset()
        self._init_team(claim_minutes)
        self._init_finetune(finetune_seconds, finetune_settings)
        self.workspace()
