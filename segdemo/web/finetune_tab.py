"""Handlers of the Fine-tune tab: start and cancel the background job, poll its progress and loss curve, show the
result, the version table with "make live" (promote / roll back), and the corrections trend.

A mixin of the app's handler class: it uses ``self.workspace(session)`` and ``self._lock`` from
:class:`segdemo.web.state.AppState` and ``self.ensure_scoring`` from the labelling handlers (a promoted version
scores the queue again). Each handler takes plain values and a Session and returns what the UI shows.
"""

from __future__ import annotations

import dataclasses
import html
import os
from datetime import datetime

import gradio as gr
import pandas as pd

from segdemo import ui
from segdemo.finetune import FinetuneJob, FinetuneSettings, JobBusy, active_job
from segdemo.guard import MIN_IMAGES
from segdemo.models import shipped_weights
from segdemo.store import SHIPPED, StoreError
from segdemo.web.state import Session

FINETUNE_SECONDS = float(os.environ.get("SEGDEMO_FINETUNE_SECONDS", 0))
"""The budget the slider starts at (seconds; 0 = automatic), from ``SEGDEMO_FINETUNE_SECONDS``."""


def _fmt_seconds(seconds: float) -> str:
    """``42 s`` under a minute, ``m:ss`` from then on."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class FinetuneHandlers:
    """The fine-tune job, its progress, results and versions (mixed into the app's handler class)."""

    def _init_finetune(self, seconds: float | None, settings: FinetuneSettings | None) -> None:
        self.finetune_seconds = float(seconds if seconds is not None else FINETUNE_SECONDS)
        self.finetune_settings = settings or FinetuneSettings()
        self._jobs: dict[str, FinetuneJob] = {}

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
        """Ask the workspace's running job to stop → progress HTML; without a running job only a notice."""
        job = active_job(self.workspace(session))
        if job is None:
            gr.Info("No fine-tune is running.")
            return gr.skip()
        job.cancel()
        return self._progress_html(job, note="cancelling…")

    def current_job(self, session: Session) -> FinetuneJob | None:
        """The workspace's running job, else the last one started from this app, else None."""
        workspace = self.workspace(session)
        return active_job(workspace) or self._jobs.get(str(workspace.root))

    @staticmethod
    def _progress_html(job: FinetuneJob | None, note: str = "") -> str:
        """Status, percentage, elapsed / remaining time and a bar for ``job``; ``note`` replaces its message."""
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
        """The loss curve's points (step, loss) so far; empty without a job."""
        losses = list(job.state.losses) if job is not None else []
        return pd.DataFrame({"step": pd.Series([s for s, _ in losses], dtype="int64"),
                             "loss": pd.Series([v for _, v in losses], dtype="float64")})

    def loss_chart(self, job: FinetuneJob | None) -> tuple[gr.LinePlot, str]:
        """(loss chart, note): the chart shows once the job has logged a loss; until then the note says why
        it is empty."""
        frame = self.loss_frame(job)
        if len(frame):
            return gr.LinePlot(value=frame, visible=True), ""
        note = ("The training loss is drawn here while a fine-tune runs." if job is None or job.state.status ==
                "running" else "This fine-tune logged no training loss.")
        return gr.LinePlot(value=frame, visible=False), note

    def trend_chart(self, session: Session) -> tuple[gr.ScatterPlot, str]:
        """(corrections chart, note): one point per saved sample (share of pixels corrected, in save order),
        with a y axis from 0 in whole percents; without samples the note says what will appear."""
        frame = self.trend_frame(session)
        if not len(frame):
            return (gr.ScatterPlot(value=frame, visible=False),
                    "Each saved sample adds a point here: the share of its pixels you corrected. Fewer corrections "
                    "over time mean the model is learning.")
        top = max(1.0, float(frame["% pixels corrected"].max()) * 1.15)
        return gr.ScatterPlot(value=frame, visible=True, y_lim=[0, top], x_lim=[0, max(len(frame), 5) + 1]), ""

    def readiness(self, session: Session) -> tuple[str, gr.Button]:
        """(what a fine-tune can and cannot decide with the workspace's samples, the Fine-tune button): the
        button is off until there is something to train on and something to measure with."""
        workspace = self.workspace(session)
        train, heldout = len(workspace.split_ids("train")), len(workspace.split_ids("heldout"))
        counts = f"{ui.plural(train, 'train sample')} and {ui.plural(heldout, 'held-out sample')}"
        if not train or not heldout:
            return (f"With {counts}, a fine-tune cannot start: it needs at least one of each. Save corrected masks "
                    "on the Segment tab (the 3rd save and every third one after it, up to 4, are held out to "
                    "measure the model; then 1 in 5).",
                    gr.Button("Fine-tune (needs more samples)", interactive=False))
        if heldout < MIN_IMAGES:
            return (f"With {counts}, a fine-tune trains and reports how the new version does on the held-out "
                    f"{'image' if heldout == 1 else 'images'}, but that is **too few to decide** a refinement: "
                    f"under {MIN_IMAGES} held-out images the guard puts a version live by itself only for a clear "
                    "gain, or when it learns a class the live model keeps getting wrong on your recent saves. "
                    "Otherwise the new version is kept and you can make it live by hand under Versions.",
                    gr.Button("Fine-tune (few held-out images)", interactive=True))
        return (f"With {counts}, the guard scores the live model and the new version on the held-out images "
                "together (mIoU and the share of pixels wrong) and on how far it moves unlabelled images; the new "
                "version goes live if it is better without forgetting, or if it learns a class the live model "
                "keeps getting wrong on your recent saves. (Each Save also teaches the model's top within "
                "seconds: see the line under Save.)", gr.Button("Fine-tune", interactive=True))

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
            how = "learned after a save" if entry.meta.get("learner") == "fast" else "fine-tuned"
            rows.append([entry.version, f"{how} from {entry.meta.get('parent', '?')}",
                         "–" if "miou" not in before else f"{before['miou']:.3f}",
                         "–" if "miou" not in after else f"{after['miou']:.3f} (held-out)",
                         datetime.fromtimestamp(created).strftime("%m-%d %H:%M") if created else "",
                         "● live" if live == entry.version else ""])
        choices = [(f"{r[0]} — {r[1]}{' (live)' if r[5] else ''}", r[0]) for r in rows]
        return rows, gr.Dropdown(choices=choices, value=live)

    def make_live(self, model: str, version: str | None, session: Session) -> str:
        """Serve ``version`` of ``model`` from now on (promote or roll back) → status markdown."""
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
        """Timer tick → (progress, loss chart, loss note, summary, result table, versions, version choices,
        corrections chart, its note, timer); while the job runs only the first three change."""
        job = self.current_job(session)
        if job is None:
            return (self._progress_html(None),) + (gr.skip(),) * 8 + (gr.Timer(active=False),)
        progress, (losses, loss_note) = self._progress_html(job), self.loss_chart(job)
        if job.state.status == "running":
            return (progress, losses, loss_note) + (gr.skip(),) * 7
        summary, rows = self.result_view(job.model, session)
        versions, dropdown = self.versions_view(model, session)
        self.ensure_scoring(self.workspace(session), job.model)  # a promoted version scores the queue again
        return (progress, losses, loss_note, summary, gr.Dataframe(value=rows, visible=rows is not None), versions,
                dropdown, *self.trend_chart(session), gr.Timer(active=False))

    def finetune_panel(self, model: str, session: Session) -> tuple:
        """Everything the fine-tune tab shows, for page load, model changes and saves → (intro, Fine-tune
        button, progress, loss chart, loss note, summary, result table, versions, version choices, corrections
        chart, its note, timer)."""
        job = self.current_job(session)
        summary, rows = self.result_view(model, session)
        versions, dropdown = self.versions_view(model, session)
        readiness, button = self.readiness(session)
        intro = f"Fine-tunes **{model or '–'}** (the model chosen on the Segment tab). {readiness}"
        running = job is not None and job.state.status == "running"
        return (intro, button, self._progress_html(job), *self.loss_chart(job), summary,
                gr.Dataframe(value=rows, visible=rows is not None), versions, dropdown, *self.trend_chart(session),
                gr.Timer(active=running))
