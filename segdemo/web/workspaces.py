"""Handlers of the Label set tab: the workspace's classes, switching this browser tab to another workspace, and
creating a new workspace with typed classes beside the start-up one (``<workspace>-<name>``).

A mixin of the app's handler class: it uses ``self.workspace(session)``, ``self.add_workspace`` and
``self.workspace_dir`` from :class:`segdemo.web.state.AppState` and ``self.close_claim`` from the team handlers.
Each handler takes plain values and a Session and returns what the UI shows.
"""

from __future__ import annotations

import gradio as gr

from segdemo import ui
from segdemo.store import StoreError
from segdemo.web.state import Session


class WorkspaceHandlers:
    """Label sets and workspaces (mixed into the app's handler class)."""

    def labels_view(self, session: Session) -> list[list[str]]:
        """One row per class (number from 1, editor key, name, colour, value in mask PNGs), then void."""
        labels = self.workspace(session).labels
        rows = [[str(i + 1), ui.class_key(i), name, color, str(i)]
                for i, (name, color) in enumerate(zip(labels.names, labels.hex_colors()))]
        rows.append(["", "", "void (ignored)", "#000000", str(labels.ignore_index)])
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
        keys = "Keys 1–9 and 0 pick classes 1–10 in the editor" + (
            ", Shift+1–0 classes 11–20" if labels.num_classes > 10 else "") + (
            "; the others are picked by clicking" if labels.num_classes > 20 else "")
        info = (f"Working in `{workspace.root}` · label set **{labels.name}**: {labels.num_classes} classes. "
                f"{keys}. Saved mask PNGs store each pixel's class as a value from 0 (class 1) to "
                f"{labels.num_classes - 1} (class {labels.num_classes}); **{labels.ignore_index} = void** (ignored "
                "in training and metrics).")
        return (info, ui.labels_table_html(labels),
                gr.Dropdown(choices=self.workspace_choices(), value=str(workspace.root)))

    def _switched(self, session: Session, message: str) -> tuple:
        """Outputs after a workspace change → (message, info, label table, workspace choices, legend, editor, view,
        Image box, status, Save status, session): the session forgets its image, every panel is emptied; legend and
        editor follow the labels."""
        session.image = session.prediction = session.corrected = session.confidence = None
        session.sample_id, session.token, session.selected, session.gallery_ids = None, "", None, []
        session.from_queue, session.revision, session.conflict = False, 0, None
        labels = self.workspace(session).labels
        info, table, dropdown = self.workspace_view(session)
        return (message, info, table, dropdown, ui.legend_html(labels), "", None, gr.Image(value=None, label="Image"),
                "Workspace switched: upload an image and press **Segment**.", "", session)

    def switch_workspace(self, path: str | None, session: Session) -> tuple:
        """Point this browser session at another workspace listed by :meth:`workspace_choices`."""
        allowed = {value for _, value in self.workspace_choices()}
        if not path or path not in allowed:
            gr.Warning("Choose one of the listed workspaces.")
            return (gr.skip(),) * 10 + (session,)
        self.close_claim(session)
        session.workspace = path
        return self._switched(session, f"Switched to `{path}`.")

    def create_workspace(self, name: str, classes: str, session: Session) -> tuple:
        """Create ``<workspace>-<name>`` with the typed classes and switch this session to it."""
        slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in (name or "").strip().lower()).strip("-_")[:40]
        if not slug:
            gr.Warning("Give the new workspace a name (letters, digits, '-' or '_').")
            return (gr.skip(),) * 10 + (session,)
        try:
            labels = ui.parse_classes(classes, name=slug)
        except ValueError as err:
            gr.Warning(f"Classes not understood: {err}")
            return (f"⚠ Classes not understood: {err}",) + (gr.skip(),) * 9 + (session,)
        base = self.workspace_dir.resolve()
        path = base.parent / f"{base.name}-{slug}"
        try:
            self.add_workspace(path, labels)
        except StoreError as err:
            gr.Warning(str(err))
            return (f"⚠ {err}",) + (gr.skip(),) * 9 + (session,)
        self.close_claim(session)
        session.workspace = str(path)
        return self._switched(session, f"Created `{path}` with {labels.num_classes} classes and switched to it. "
                                       "The models' classifiers start untrained for these classes: correct a few "
                                       "masks, then fine-tune.")
