"""Handlers for several people on one workspace: who is saving (the signed-in user, a name set in the page, or
"local"), the queue claims of each browser tab, a refused Save's three choices (keep theirs, save mine as the newer
revision, open theirs) and a sample's revision history in the Dataset tab.

A mixin of the app's handler class: it uses ``self.workspace(session)``, ``self._lock`` from
:class:`segdemo.web.state.AppState`, ``self.save`` and ``self.editor_payload`` from the segment handlers and
``self.open_saved`` from the dataset handlers. Each handler takes plain values and a Session and returns what the UI
shows.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime

import gradio as gr

from segdemo.claims import IDLE_MINUTES, Claims
from segdemo.store import LOCAL_AUTHOR, RevisionConflict, StoreError, Workspace, make_sample_id
from segdemo.web.state import Session

NAME_LENGTH = 60
TOUCH_EVERY = 30.0
"""Strokes renew the tab's queue claim at most this often (seconds): each renewal rewrites the claims file."""


def clean_name(name: str | None) -> str:
    """A name typed in the page → what revisions record: printable, one line, at most NAME_LENGTH characters."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", str(name or "")).strip()[:NAME_LENGTH]


def conflict_line(conflict: RevisionConflict) -> str:
    """The Save status of a refused save: who saved the newer revision, when, and the three choices."""
    stored = conflict.stored
    when = datetime.fromtimestamp(stored.updated).strftime("%H:%M:%S")
    return (f"⚠ Not saved: **{stored.author or 'someone'}** saved this image at {when} (revision "
            f"{stored.mask_revision}) after you opened it (revision {conflict.expected}). "
            "Your edit is still in the editor. **Keep theirs** drops it, **Save mine** stores it as revision "
            f"{stored.mask_revision + 1} (theirs stays in the history), **Open theirs** loads their mask.")


class TeamHandlers:
    """Names, queue claims, save conflicts and revision history (mixed into the app's handler class)."""

    def _init_team(self, claim_minutes: float | None) -> None:
        self.claim_seconds = float(IDLE_MINUTES if claim_minutes is None else claim_minutes) * 60
        self._claims: dict[str, Claims] = {}
        self._holders: dict[str, str] = {}
        """holder (tab) → root of the workspace it last claimed in, to release its claim when the tab closes."""
        self._touched: dict[str, float] = {}
        """holder → when a stroke last renewed its claim (monotonic seconds)."""

    # -- who -------------------------------------------------------------------------------------------------

    def claims(self, workspace: Workspace) -> Claims:
        with self._lock:
            root = str(workspace.root)
            if root not in self._claims:
                self._claims[root] = Claims(workspace, idle_seconds=self.claim_seconds)
            return self._claims[root]

    @staticmethod
    def holder(session: Session) -> str:
        """The tab's name as a claim holder (made up once when Gradio gave none)."""
        if not session.key:
            session.key = uuid.uuid4().hex
        return session.key

    @staticmethod
    def author_name(session: Session) -> str:
        """Who a save from this tab is recorded as: the signed-in user, else the page's name, else "local"."""
        return session.user or session.author or LOCAL_AUTHOR

    def identify(self, session: Session, remembered: str | None, request: gr.Request) -> tuple:
        """On page load: the tab's session hash, the signed-in user and the name this browser set last time →
        (session, name box). With a login the name box shows the user name and cannot be changed."""
        if request is not None and getattr(request, "session_hash", None):
            session.key = str(request.session_hash)
        session.user = clean_name(getattr(request, "username", None) if request is not None else None)
        if session.user:
            return session, gr.Textbox(value=session.user, interactive=False, info="signed in")
        if session.author or not clean_name(remembered):  # a name typed before this ran wins
            return session, gr.skip()
        session.author = clean_name(remembered)
        return session, gr.Textbox(value=session.author)

    def set_name(self, name: str, session: Session) -> tuple[str, Session, str]:
        """The name box changed → (its note, session, the name this browser remembers)."""
        session.author = clean_name(name)
        return f"Saves from this window are recorded as **{self.author_name(session)}**.", session, session.author

    def session_closed(self, request: gr.Request) -> None:
        """The tab closed: its queue claim ends (its other state goes with Gradio's own clean-up)."""
        holder = str(getattr(request, "session_hash", "") or "")
        with self._lock:
            root = self._holders.pop(holder, None)
            self._touched.pop(holder, None)
        if root is not None:
            try:
                self.claims(self.workspace(Session(workspace=root))).release(holder)
            except (StoreError, OSError):
                pass

    # -- claims ------------------------------------------------------------------------------------------------

    def claim_next(self, workspace: Workspace, session: Session, order: list[str]) -> str | None:
        """The first of ``order`` no other tab holds, now held by this one (its previous claim ends) → id or None."""
        holder = self.holder(session)
        with self._lock:
            self._holders[holder] = str(workspace.root)
        return self.claims(workspace).claim_next(holder, self.author_name(session), order)

    def still_working(self, session: Session | None) -> None:
        """The tab painted on its image: its claim's idle time starts again (at most once per TOUCH_EVERY s)."""
        if session is None or not session.key or not session.from_queue:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._touched.get(session.key, -TOUCH_EVERY) < TOUCH_EVERY:
                return
            self._touched[session.key] = now
        try:
            self.claims(self.workspace(session)).touch(session.key)
        except (StoreError, OSError):
            pass

    def held_elsewhere(self, workspace: Workspace, session: Session) -> set[str]:
        return self.claims(workspace).held_by_others(self.holder(session))

    def close_claim(self, session: Session, keep: str | None = None) -> None:
        """The tab closed its queued image (opened another, saved, or switched workspace): its claim ends, unless
        the claim is on ``keep``."""
        if not session.key:
            return
        claims = self.claims(self.workspace(session))
        if keep is not None and any(c.sample_id == keep and c.holder == session.key for c in claims.all()):
            return
        claims.release(session.key)

    # -- revisions ---------------------------------------------------------------------------------------------

    def opened_at(self, session: Session) -> None:
        """Remember the revision of the sample the editor just opened (0 when it has no mask yet); an upload is
        the sample its file name and pixels make."""
        workspace = self.workspace(session)
        sample_id = session.sample_id
        if sample_id is None and session.image is not None:
            sample_id = make_sample_id(session.source_name, session.image)
        try:
            meta = workspace.sample_meta(sample_id) if sample_id else None
        except StoreError:
            meta = None
        session.revision = meta.mask_revision if meta is not None else 0
        session.conflict = None

    def conflict_buttons(self, session: Session) -> tuple:
        """(Keep theirs, Save mine, Open theirs): shown while a refused save waits for the person's choice."""
        shown = session is not None and session.conflict is not None
        return tuple(gr.Button(visible=shown) for _ in range(3))

    def keep_theirs(self, session: Session) -> tuple:
        """Drop this tab's edit and close the image → (Save status, editor, session)."""
        if session.conflict is None:
            return gr.skip(), gr.skip(), session
        stored, session.conflict = session.conflict, None
        self.close_claim(session)
        session.image = session.prediction = session.corrected = session.confidence = None
        session.sample_id, session.from_queue, session.token = None, False, ""
        return (f"Kept **{stored.author or 'their'}**'s revision {stored.mask_revision} of **{stored.id}**; your "
                "edit was dropped. Press **Next image** or open another image."), "", session

    def save_mine(self, painter_value: str, session: Session) -> tuple[str, Session]:
        """Save the editor's mask over the newer revision the refused save found, as the revision after it (a
        revision saved meanwhile by someone else is refused again)."""
        if session.conflict is None:
            return gr.skip(), session
        session.revision, session.conflict = session.conflict.mask_revision, None
        return self.save(painter_value, session)

    def open_theirs(self, session: Session) -> tuple:
        """Load the newer revision into the editor (this tab's edit is dropped) → (view, legend, status, session,
        tab)."""
        if session.conflict is None or not session.sample_id:
            return gr.skip(), gr.skip(), gr.skip(), session, gr.skip()
        return self.open_saved(session.sample_id, session)

    def history_view(self, session: Session) -> tuple:
        """(history rows, revision dropdown) of the sample selected in the Dataset gallery, newest first."""
        rows, choices = [], []
        if session is not None and session.selected:
            try:
                revisions = self.workspace(session).history(session.selected)
            except StoreError:
                revisions = []
            for index, revision in enumerate(revisions):
                note = "latest" if index == 0 else ""
                if revision.restored_from:
                    note = f"{note + ', ' if note else ''}restored from {revision.restored_from}"
                rows.append([str(revision.n), revision.author,
                             datetime.fromtimestamp(revision.saved).strftime("%Y-%m-%d %H:%M:%S"),
                             f"{revision.changed_pixels:,}", note])
                choices.append((f"revision {revision.n} · {revision.author}", revision.n))
        value = choices[1][1] if len(choices) > 1 else None
        return rows, gr.Dropdown(choices=choices, value=value)

    def restore(self, revision: int | None, session: Session) -> str:
        """Save the selected sample's ``revision`` again as its newest revision → status markdown."""
        if not session.selected or revision is None:
            gr.Warning("Select a sample and one of its revisions first.")
            return "Select a sample and one of its revisions first."
        try:
            meta = self.workspace(session).restore_revision(session.selected, int(revision),
                                                            author=self.author_name(session))
        except (StoreError, OSError, ValueError) as err:
            gr.Warning(str(err))
            return f"⚠ {err}"
        if session.model:
            self.start_learning(self.workspace(session), session.model)
        return (f"Restored revision {int(revision)} of **{meta.id}** as revision {meta.revision} (by "
                f"{meta.author}); the learners use it from their next update.")
