"""segdemo in the browser: segment an image, correct the mask, save it, fine-tune on the corrections.

``python app.py`` serves on http://127.0.0.1:7860 (``--host``, ``--port``, ``--workspace DIR``, ``--auth
user:password`` or ``SEGDEMO_AUTH``, ``--share``). This file holds the constants, the layout and wiring
(``build_demo``) and the command line only. Each tab's handlers live in ``segdemo.web`` (``segment``,
``learning``, ``labelling``, ``dataset``, ``finetune_tab``, ``workspaces``; ``segdemo.web.handlers.SegdemoApp``
combines them); the work is done by ``segdemo`` (inference, store, learner, finetune) and the pure view helpers
in ``segdemo.ui``. Importing it has no side effects: ``build_demo(workspace)`` makes the app, and the
module-level ``demo`` is built on first access.

Events: three public API endpoints, ``/predict`` (image file, model name → overlay, legend HTML, status text),
``/next`` (model, queue order → the next queued image no other session holds, opened in this session) and
``/save`` (corrected mask as ``segdemo.ui.painter_value`` JSON → status; it saves the session's last opened
image); every other event is private.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import gradio as gr

from segdemo import ui
from segdemo.cli import CommandError, learner_settings
from segdemo.inference import configure_threads
from segdemo.labels import LabelSet
from segdemo.learning.finetune_settings import FinetuneSettings
from segdemo.learning.learner import LearnerSettings
from segdemo.queue import STRATEGIES
from segdemo.store import StoreError
from segdemo.web.handlers import DEFAULT_WORKSPACE, SegdemoApp
from segdemo.web.models import default_model, model_catalogue, offered_models
from segdemo.web.segment import EXAMPLES_NOTE, VIEWS, ensure_examples
from segdemo.web.state import Session

__all__ = ["SegdemoApp", "build_demo", "default_model", "ensure_examples", "is_loopback", "main", "model_catalogue",
           "offered_models", "parse_auth"]
"""The handler class and the model catalogue's functions are re-exported here for scripts and tests."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_FILE_SIZE = "25mb"
THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate",
                       font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],
                       font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])


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
               finetune_settings: FinetuneSettings | None = None, learner_settings: LearnerSettings | None = None,
               claim_minutes: float | None = None) -> gr.Blocks:
    """The whole app for one workspace. Creates the workspace folder; loads no model until the first Segment.

    ``finetune_seconds``: the fine-tune budget the page starts with (default ``SEGDEMO_FINETUNE_SECONDS`` or 0,
    automatic);
    ``finetune_settings``: the other fine-tune settings (defaults of ``FinetuneSettings``);
    ``learner_settings``: the fast learner's after each Save (defaults of ``LearnerSettings``);
    ``claim_minutes``: how long a queued image stays held by a window that does nothing with it (default 10).
    """
    app = SegdemoApp(workspace_dir, finetune_seconds=finetune_seconds, finetune_settings=finetune_settings,
                     learner_settings=learner_settings, claim_minutes=claim_minutes)
    choices = app.models()
    labels: LabelSet = app.workspace().labels
    first_model = default_model(choices)
    private = {"api_visibility": "private"}

    def grabcut(data):
        return app.grabcut_request(data)

    def fill_in(data):
        return app.fill_in_request(data)

    with SegdemoBlocks(title="segdemo · segment, correct, fine-tune", analytics_enabled=False,
                       delete_cache=(1800, 3600)) as demo:
        session = gr.State(app.new_session())
        demo.segdemo_app = app  # for tests and benchmarks
        with gr.Row(elem_classes="sd-header"):
            gr.Markdown("# segdemo\nSegment an image, correct the mask with a brush, save it as training data "
                        "and fine-tune the model on your corrections, all in this page.")
        with gr.Tabs(selected="segment") as tabs:
            with gr.Tab("Segment & correct", id="segment"):
                with gr.Row(equal_height=False, elem_id="segment-row"):
                    with gr.Column(scale=2, min_width=290, elem_id="segment-controls"):
                        image_in = gr.Image(type="filepath", image_mode=None, label="Image",
                                            sources=["upload", "clipboard"], height=170, elem_id="image-input")
                        gr.Examples(ensure_examples(), inputs=image_in, label="Examples: drawings, not photos",
                                    elem_id="examples")
                        gr.Markdown(EXAMPLES_NOTE, elem_classes="sd-note")
                        model = gr.Dropdown([(c.label, c.name) for c in choices], value=first_model, label="Model",
                                            info="params · CPU ms · mIoU on CamVid val",
                                            elem_id="model-select")
                        segment_btn = gr.Button("Segment", variant="primary", elem_id="segment-btn")
                        status = gr.Markdown("Upload an image or pick an example, then press **Segment**.",
                                             elem_id="segment-status", elem_classes="sd-status")
                        next_btn = gr.Button("Next image (N)", elem_id="next-btn")
                        strategy = gr.Radio([(label, key) for key, label in STRATEGIES.items()],
                                            value="uncertainty", label="Queue order", show_label=False,
                                            container=False, elem_id="queue-strategy")
                        queue_info = gr.Markdown("", elem_id="queue-status", elem_classes="sd-note")
                        author = gr.Textbox(label="Your name", placeholder="local", max_length=60,
                                            info="recorded with each mask you save", elem_id="author-name")
                        author_note = gr.Markdown("", elem_id="author-note", elem_classes="sd-note")
                    with gr.Column(scale=6, min_width=560, elem_id="editor-column"):
                        editor = gr.HTML("", html_template=ui.PAINTER_TEMPLATE, js_on_load=ui.PAINTER_JS,
                                         elem_id="editor", label="Editor", min_height=160,
                                         server_functions=[grabcut, fill_in])
                    with gr.Column(scale=2, min_width=260, elem_id="legend-column"):
                        legend = gr.HTML(ui.legend_html(labels), js_on_load=ui.LEGEND_JS, elem_id="legend",
                                         label="Classes")
                        save_btn = gr.Button("Save corrected mask", variant="primary", elem_id="save-btn")
                        move_on = gr.Checkbox(True, label="Save moves on to the next queued image",
                                              elem_id="save-next", visible=False)
                        save_status = gr.Markdown("", elem_id="save-status", elem_classes="sd-status")
                        with gr.Row(elem_id="conflict-choices"):
                            keep_btn = gr.Button("Keep theirs", size="sm", visible=False, elem_id="keep-theirs-btn")
                            mine_btn = gr.Button("Save mine", size="sm", variant="primary", visible=False,
                                                 elem_id="save-mine-btn")
                            theirs_btn = gr.Button("Open theirs", size="sm", visible=False, elem_id="open-theirs-btn")
                        learn_status = gr.Markdown("", elem_id="learn-status", elem_classes="sd-status")
                        with gr.Accordion("Confidence, mask and download", open=False, elem_id="views"):
                            overlay_out = gr.Image(label="View", type="filepath", format="png", interactive=False,
                                                   height=200, elem_id="overlay", buttons=["download", "fullscreen"])
                            view = gr.Radio(list(VIEWS), value="Overlay", label="Show", elem_id="view-toggle",
                                            info="Confidence: yellow sure, purple unsure · Mask: the exported "
                                                 "palette colours")
                            opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Overlay opacity",
                                                elem_id="opacity")

            with gr.Tab("Dataset", id="dataset") as dataset_tab:
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        import_files = gr.File(label="Import images", file_count="multiple", type="filepath",
                                               height=170, elem_id="import-files")
                        gr.Markdown("Drop many images, a folder's files or a zip. A zipped dataset folder with "
                                    "`images/` + `masks/`, or a VOC tree, brings its masks as corrected samples.",
                                    elem_classes="sd-note")
                    with gr.Column(scale=2):
                        import_status = gr.Markdown("Nothing imported yet in this session.", elem_id="import-status")
                        dataset_queue = gr.Markdown("", elem_id="dataset-queue")
                        with gr.Row():
                            cancel_import_btn = gr.Button("Cancel import", size="sm", elem_id="import-cancel-btn")
                            cancel_score_btn = gr.Button("Stop scoring", size="sm", elem_id="score-cancel-btn")
                samples = gr.Dataframe(headers=["sample", "state", "queue #", "uncertainty", "saved by"],
                                       interactive=False,
                                       max_height=260, elem_id="samples-table")
                dataset_summary = gr.Markdown(elem_id="dataset-summary")
                gallery = gr.Gallery(label="Saved samples (corrected mask over the image, classes outlined)",
                                     columns=5, height=380, allow_preview=False, object_fit="contain",
                                     elem_id="dataset-gallery")
                selection = gr.Markdown("Select a sample in the gallery.", elem_id="dataset-selection")
                with gr.Row():
                    open_btn = gr.Button("Open in editor", elem_id="open-btn")
                    delete_btn = gr.Button("Delete selected", variant="stop", elem_id="delete-btn")
                with gr.Accordion("History of the selected sample", open=False, elem_id="history"):
                    history = gr.Dataframe(headers=["revision", "saved by", "saved", "pixels corrected", "note"],
                                           interactive=False, max_height=220, elem_id="history-table")
                    with gr.Row(equal_height=True):
                        revision_pick = gr.Dropdown([], label="Revision", elem_id="revision-select", scale=3)
                        restore_btn = gr.Button("Restore as the newest revision", elem_id="restore-btn", scale=1)
                    history_status = gr.Markdown("", elem_id="history-status")
                with gr.Row(equal_height=True, elem_id="export-row"):
                    export_format = gr.Radio(["layout", "voc", "coco"], value="layout", label="Export format",
                                             elem_id="export-format", scale=2)
                    export_btn = gr.Button("Export dataset (.zip)", elem_id="export-btn", scale=1)
                export_file = gr.File(label="Dataset zip", visible=False, interactive=False, height=80,
                                      elem_id="export-file")
                gr.Markdown("*layout*: `images/`, `masks/` (palette PNGs: pixel value = class index, 255 = void), "
                            "`predictions/`, `splits/` and `labels.json`, ready for `python -m segdemo train`; *voc*: "
                            "`VOCdevkit/VOC2012` (train = train split, val = held-out); *coco*: `annotations.json` "
                            "(one RLE annotation per class per image) and `images/`. Unlabelled images are left out. "
                            "Masks keep the label set's palette.",
                            elem_classes="sd-note")

            with gr.Tab("Fine-tune", id="finetune") as finetune_tab:
                ft_intro = gr.Markdown(elem_id="finetune-intro")
                with gr.Row():
                    budget = gr.Slider(0, 600, value=app.finetune_seconds, step=5,
                                       label="Training budget (seconds; 0 = automatic: 5 s per training sample, "
                                             "40-120 s)",
                                       elem_id="finetune-seconds", scale=2)
                    finetune_btn = gr.Button("Fine-tune", variant="primary", elem_id="finetune-btn", scale=1,
                                             interactive=False)
                    cancel_btn = gr.Button("Cancel", variant="stop", elem_id="cancel-btn", scale=1)
                ft_progress = gr.HTML(app._progress_html(None), elem_id="finetune-progress", js_on_load=None)
                with gr.Row(equal_height=False):
                    with gr.Column():
                        gr.Markdown("#### Training loss")
                        loss_plot = gr.LinePlot(app.loss_frame(None), x="step", y="loss", height=240,
                                                visible=False, show_label=False, elem_id="loss-plot")
                        loss_note = gr.Markdown(elem_id="loss-note", elem_classes="sd-note")
                    with gr.Column():
                        gr.Markdown("#### Pixels corrected per saved sample")
                        trend_plot = gr.ScatterPlot(app.trend_frame(app.new_session()), x="sample",
                                                    y="% pixels corrected", height=240, visible=False,
                                                    show_label=False, x_axis_format="d", y_axis_format=".1f",
                                                    x_title="sample (save order)", elem_id="trend-plot")
                        trend_note = gr.Markdown(elem_id="trend-note", elem_classes="sd-note")
                ft_summary = gr.Markdown("No fine-tune result yet.", elem_id="finetune-summary")
                ft_table = gr.Dataframe(headers=["metric", "live", "new version", "change"], visible=False,
                                        interactive=False, elem_id="finetune-result", max_height=420)
                gr.Markdown("### Versions")
                versions_table = gr.Dataframe(headers=["version", "origin", "mIoU of the version it replaced",
                                                       "its mIoU (judged on)", "created", "live"], interactive=False,
                                              elem_id="versions")
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
            preprocess=False, show_progress_on=editor, concurrency_limit=2, concurrency_id="inference")
        segment_event.success(app.editor_payload, session, editor, show_progress="hidden", **private)
        segment_event.success(app.segmented_panels, session, [image_in, save_status, overlay_out],
                              show_progress="hidden", **private)
        image_in.change(app.image_changed, [image_in, session], status, show_progress="hidden", **private)
        for control in (opacity, view):
            control.change(app.rerender, [opacity, view, session], [overlay_out, session], show_progress="hidden",
                           trigger_mode="always_last", **private)
        saved = save_btn.click(app.save, [editor, session], [save_status, session], js=ui.SAVE_JS,
                               api_name="save", concurrency_limit=2, concurrency_id="store",
                               api_description="Save the last segmented image of this session with a corrected "
                                               "mask (JSON made by segdemo.ui.painter_value); returns the status.")
        saved.then(app.refresh_view, session, [overlay_out, legend], show_progress="hidden", **private)
        conflict_outputs = [keep_btn, mine_btn, theirs_btn]
        saved.then(app.conflict_buttons, session, conflict_outputs, show_progress="hidden", **private)
        mine = mine_btn.click(app.save_mine, [editor, session], [save_status, session], js=ui.SAVE_JS,
                              concurrency_limit=2, concurrency_id="store", **private)
        mine.then(app.conflict_buttons, session, conflict_outputs, show_progress="hidden", **private)
        mine.then(app.refresh_view, session, [overlay_out, legend], show_progress="hidden", **private)
        mine.then(app.learning_status, session, learn_status, show_progress="hidden", **private)
        keep_btn.click(app.keep_theirs, session, [save_status, editor, session], **private).then(
            app.conflict_buttons, session, conflict_outputs, show_progress="hidden", **private)
        theirs = theirs_btn.click(app.open_theirs, session, [overlay_out, legend, status, session, tabs], **private)
        theirs.success(app.editor_payload, session, editor, show_progress="hidden", **private)
        theirs.success(app.image_panels, session, [image_in, save_status, overlay_out], show_progress="hidden",
                       **private)
        theirs.then(app.conflict_buttons, session, conflict_outputs, show_progress="hidden", **private)
        remembered_name = gr.BrowserState("", storage_key="segdemo-name", secret="segdemo-name")
        demo.load(app.identify, [session, remembered_name], [session, author], **private)
        author.change(app.set_name, [author, session], [author_note, session, remembered_name],
                      trigger_mode="always_last", show_progress="hidden", **private)
        demo.unload(app.session_closed)
        saved.then(app.dataset_view, session, [gallery, dataset_summary, session], show_progress="hidden", **private)

        dataset_tab.select(app.dataset_view, session, [gallery, dataset_summary, session], **private)
        dataset_tab.select(app.samples_table, [model, strategy, session], samples, **private)
        dataset_tab.select(app.queue_status, [model, strategy, session], dataset_queue, **private)

        next_outputs = [overlay_out, legend, status, editor, queue_info, image_in, save_status, session, tabs]
        queue_outputs = [queue_info, move_on]
        next_btn.click(app.next_image, [model, strategy, session], next_outputs, concurrency_id="inference",
                       concurrency_limit=2, show_progress_on=editor, api_name="next",
                       api_description="Open the next queued image that no other window holds (it is held for "
                                       "this session until saved, skipped or closed); returns the editor's "
                                       "panels, the status names the sample.").then(
            app.queue_controls, [model, strategy, session], queue_outputs, show_progress="hidden", **private)
        learned = saved.then(app.learning_status, session, learn_status, concurrency_limit=None,
                             show_progress="hidden", **private)
        learned.then(app.save_then_next, [move_on, model, strategy, save_status, session], next_outputs,
                     show_progress="hidden", **private).then(
            app.queue_controls, [model, strategy, session], queue_outputs, show_progress="hidden", **private)
        strategy.change(app.queue_status, [model, strategy, session], queue_info, **private)
        demo.load(app.queue_controls, [model, strategy, session], queue_outputs, **private)
        imported = import_files.upload(app.import_files, [import_files, model, session], [import_status, session],
                                       concurrency_id="import", concurrency_limit=1, show_progress_on=import_status,
                                       **private)
        imported.then(lambda: None, None, import_files, show_progress="hidden", **private)  # ready for the next drop
        imported.then(app.samples_table, [model, strategy, session], samples, **private)
        imported.then(app.queue_status, [model, strategy, session], dataset_queue, **private)
        imported.then(app.queue_controls, [model, strategy, session], queue_outputs, **private)
        cancel_import_btn.click(app.cancel_import, session, None, **private)
        cancel_score_btn.click(app.cancel_scoring, session, dataset_queue, **private)

        def on_gallery_select(evt: gr.SelectData, state: Session):
            return app.select_sample(evt.index, state)

        gallery.select(on_gallery_select, session, [selection, session], **private).then(
            app.history_view, session, [history, revision_pick], show_progress="hidden", **private)
        restore_btn.click(app.restore, [revision_pick, session], history_status, concurrency_id="store",
                          **private).then(
            app.history_view, session, [history, revision_pick], show_progress="hidden", **private).then(
            app.dataset_view, session, [gallery, dataset_summary, session], show_progress="hidden", **private)
        opened = open_btn.click(app.open_sample, session, [overlay_out, legend, status, session, tabs], **private)
        opened.success(app.editor_payload, session, editor, show_progress="hidden", **private)
        opened.success(app.image_panels, session, [image_in, save_status, overlay_out], show_progress="hidden",
                       **private)
        delete_btn.click(app.delete_selected, session, [selection, session], **private).then(
            app.dataset_view, session, [gallery, dataset_summary, session], **private)
        export_btn.click(app.export, [export_format, session], export_file, concurrency_id="store", **private)

        panel_outputs = [ft_intro, finetune_btn, ft_progress, loss_plot, loss_note, ft_summary, ft_table,
                         versions_table, version_pick, trend_plot, trend_note, timer]
        finetune_tab.select(app.finetune_panel, [model, session], panel_outputs, **private)
        model.change(app.finetune_panel, [model, session], panel_outputs, **private)
        finetune_btn.click(app.start_finetune, [model, budget, session], [ft_progress, timer],
                           concurrency_id="finetune", **private)
        cancel_btn.click(app.cancel_finetune, session, ft_progress, **private)
        timer.tick(app.poll, [model, session],
                   [ft_progress, loss_plot, loss_note, ft_summary, ft_table, versions_table, version_pick, trend_plot,
                    trend_note, timer],
                   show_progress="hidden", concurrency_limit=4, concurrency_id="poll", **private)
        live_btn.click(app.make_live, [model, version_pick, session], live_status, **private).then(
            app.finetune_panel, [model, session], panel_outputs, **private)
        demo.load(app.finetune_panel, [model, session], panel_outputs, **private)
        demo.load(app.model_dropdown, [model, session], model, **private)
        finetune_tab.select(app.model_dropdown, [model, session], model, **private)
        workspace_outputs = [workspace_info, label_table, workspace_pick]
        labels_tab.select(app.workspace_view, session, workspace_outputs, **private)
        switched_outputs = [workspace_status, *workspace_outputs, legend, editor, overlay_out, image_in, status,
                            save_status, session]
        switch_btn.click(app.switch_workspace, [workspace_pick, session], switched_outputs, **private).then(
            app.model_dropdown, [model, session], model, **private)
        create_btn.click(app.create_workspace, [new_name, new_classes, session], switched_outputs, **private).then(
            app.model_dropdown, [model, session], model, **private)
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


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """``user:password``, or several separated by commas (one login per person) → [(user, password), ...]; None
    when empty; ValueError when malformed or a user is named twice."""
    if not value:
        return None
    logins = []
    for pair in value.split(","):
        user, sep, password = pair.strip().partition(":")
        if not sep or not user or not password:
            raise ValueError("--auth / SEGDEMO_AUTH must look like user:password (several: alice:pw1,bob:pw2)")
        logins.append((user, password))
    if len({user for user, _ in logins}) != len(logins):
        raise ValueError("--auth / SEGDEMO_AUTH names a user twice")
    return logins


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="segdemo: segment, correct and fine-tune in the browser")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to serve on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--workspace", default=os.environ.get("SEGDEMO_WORKSPACE", DEFAULT_WORKSPACE),
                        help="folder for saved corrections and fine-tuned versions (default ./workspace)")
    parser.add_argument("--auth", default=os.environ.get("SEGDEMO_AUTH"),
                        help="require a login, user:password, or one per person: alice:pw1,bob:pw2 (or set "
                             "SEGDEMO_AUTH); each save records the signed-in user")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--claim-minutes", type=float, default=None,
                        help="how long Next's image stays held by a window that neither saves nor skips it "
                             "(default 10)")
    parser.add_argument("--finetune-seconds", type=float, default=None,
                        help="default fine-tune budget in seconds (default 0 = automatic: 5 s per training "
                             "sample, 40-120 s)")
    parser.add_argument("--learner", nargs="*", default=[], metavar="KEY=VALUE",
                        help="the fast learner after each Save, e.g. seconds=6 on a slow machine (default 3 s)")
    args = parser.parse_args(argv)
    try:
        learner = learner_settings(args.learner)
    except CommandError as err:
        parser.error(str(err))
    if args.claim_minutes is not None and not args.claim_minutes > 0:
        parser.error("--claim-minutes must be a positive number of minutes")
    try:
        auth = parse_auth(args.auth)
    except ValueError as err:
        parser.error(str(err))
    if not is_loopback(args.host) and auth is None:
        print(f"WARNING: serving on {args.host} without --auth: anyone who can reach this address can use the app, "
              "read and delete the saved samples. Pass --auth user:password or set SEGDEMO_AUTH.", file=sys.stderr)
    configure_threads()
    try:
        demo = build_demo(args.workspace, finetune_seconds=args.finetune_seconds, learner_settings=learner,
                          claim_minutes=args.claim_minutes)
    except StoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    demo.queue(default_concurrency_limit=2)
    demo.launch(server_name=args.host, server_port=args.port, auth=auth, share=args.share,
                max_file_size=MAX_FILE_SIZE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
