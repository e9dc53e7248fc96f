"""The fast learner seen from the app: each Save (and each import that brings masks) starts an update, and the
line under Save says what it did ("learned from 12 samples in 3.1 s — v7 live" or why the live model stayed)."""

from __future__ import annotations

from segdemo.learning.learner import FastLearner, LearnerSettings, learner_for
from segdemo.store import Workspace
from segdemo.web.state import Session

LEARN_WAIT_SECONDS = 15.0
"""How long the line under Save (and "Save moves on") waits for the update that includes the save."""


class LearningHandlers:
    """Start the fast learner and report it (mixed into the app's handler class; ``learn_after_save`` and
    ``learner_settings`` set by it)."""

    learn_after_save: bool = True
    learner_settings: LearnerSettings | None = None

    def learner(self, workspace: Workspace, model: str) -> FastLearner:
        return learner_for(workspace, model, self.learner_settings)

    def start_learning(self, workspace: Workspace, model: str) -> None:
        """A sample was saved or masks were imported: the live ``model`` learns them in the background."""
        if model and self.learn_after_save:
            self.learner(workspace, model).notify()

    def learning_status(self, session: Session) -> str:
        """After a save: wait (up to LEARN_WAIT_SECONDS) for the update that includes it → one line saying what
        it did; the predictor of a new live version is loaded before returning, so Next uses it at once."""
        if session is None or session.corrected is None or not session.model or not self.learn_after_save:
            return ""
        workspace = self.workspace(session)
        learner = self.learner(workspace, session.model)
        if not learner.wait(LEARN_WAIT_SECONDS):
            return "Still learning from your corrections; the next image uses the live model until it is done."
        state = learner.state
        if state.status == "failed":
            return f"⚠ {state.message}"
        if state.last is not None and state.last.promoted:
            try:
                self.predictors.get(workspace, session.model)
            except (ValueError, OSError):
                pass
        return f"Learning: {state.message}" if state.message else ""
