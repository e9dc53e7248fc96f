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
from segdemo.learning.finetune import FinetuneJob, JobBusy, active_job
from segdemo.learning.finetune_settings import FinetuneSettings
from segdemo.models import shipped_weights
from segdemo.promotion.guard import MIN_IMAGES
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
        """(what a press will train, on what it will be judged and why, the Fine-tune button): the button is
        off until there is something to train on and something to measure with."""
        workspace = self.workspace(session)
        train, heldout = len(workspace.split_ids("train")), len(workspace.split_ids("heldout"))
        counts = f"{ui.plural(train, 'train sample')} and {ui.plural(heldout, 'held-out sample')}"
        if not train or not heldout:
            return (f"With {counts}, a fine-tune cannot start: it needs at least one of each. Save corrected masks "
                    "on the Segment tab (the 3rd save and every third one after it, up to 4, are held out to "
                    "measure the model; then 1 in 5).",
                    gr.Button("Fine-tune (needs more samples)", interactive=False))
        settings = self.finetune_settings
        if train < settings.encoder_after:
            recent = min(settings.top.recent, train // 4)
            what = (f"A press trains the model's **top** (the decoder; FCN-8s: its score head) on the stored features "
                    f"of your {ui.plural(train, 'training sample')}, longer than a Save does, while the encoder "
                    f"stays as it is: with fewer than {settings.encoder_after} samples, whole-network versions were "
                    "worse than the top alone in our measurements (they drift toward the images just corrected). "
                    "It keeps the live model's predictions on your unlabelled images where no correction speaks. ")
            judged = f"the {ui.plural(heldout, 'held-out image')}"
            if recent:
                judged += (f" and your {ui.plural(recent, 'latest save')}, which it first trains without and "
                           "is scored on against what the live model predicted when you saved them")
        else:
            what = (f"With {train} training samples a press trains the **whole network** (the encoder too), "
                    "distilled toward the live model on your unlabelled images. ")
            judged = f"the {ui.plural(heldout, 'held-out image')}"
        if heldout + (min(settings.top.recent, train // 4) if train < settings.encoder_after else 0) < MIN_IMAGES:
            return (f"{what}With {counts} it is judged on {judged}: **too few to decide** a refinement, so the "
                    "new version goes live by itself only for a clear gain or a class being learned; otherwise "
                    "you can make it live by hand under Versions.",
                    gr.Button("Fine-tune (little evidence)", interactive=True))
        return (f"{what}It is judged on {judged} (mIoU and the share of pixels wrong, pooled) and on how far it "
                "moves the unlabelled images' predictions; it goes live only if it is better without forgetting, "
                "or if it learns a class that is new or got clearly worse on your recent saves.",
                gr.Button("Fine-tune", interactive=True))

    def result_view(self, model: str, session: Session) -> tuple[str, list[list[str]] | None]:
        """(summary markdown, rows) of the last fine-tune of ``model`` (this session's job or the newest Fine-tune
        version): what the guard decided on, every press's figures, and the live version's own."""
        workspace = self.workspace(session)
        history = self._presses(workspace, model)
        job = self.current_job(session)
        if job is not None and job.model == model and job.state.status in ("done", "failed", "cancelled"):
            state = job.state
            if state.status == "failed":
                return f"⚠ Fine-tune failed: {state.message}", None
            result = state.result
            judged = "held-out + latest saves" if result.recent_ids else "held-out"
            return f"**{state.message}**{history}", ui.result_rows(result.before, result.after, judged)
        jobs = [e for e in workspace.versions(model) if e.meta.get("learner") != "fast"] if model else []
        if jobs:
            entry = jobs[-1]
            metrics = entry.meta.get("metrics", {})
            recent = "evidence" in metrics
            before = metrics.get("evidence_before" if recent else "heldout_before")
            after = metrics.get("evidence" if recent else "heldout")
            if before and after:
                why = (entry.meta.get("guard") or {}).get("explanation")
                return (f"Last fine-tune: **{model} {entry.version}** (from {entry.meta.get('parent', '?')})"
                        + (f": {why}" if why else "") + history,
                        ui.result_rows(before, after, "held-out + latest saves" if recent else "held-out"))
        return "No fine-tune result yet." + history, None

    @staticmethod
    def _presses(workspace, model: str) -> str:
        """Markdown: a table of every press (what it trained, on what it was judged, the figures, the verdict)
        and a line on the live version when the fast learner made it; empty without either."""
        if not model:
            return ""
        entries = workspace.versions(model)
        lines = []
        presses = [e for e in entries if e.meta.get("learner") != "fast" and e.meta.get("guard")]
        if presses:
            lines += ["", "| press | trained | samples | judged on | mIoU: live → new | pixels wrong: live → new | "
                      "decision |", "|---|---|---|---|---|---|---|"]
            for entry in presses:
                guard = entry.meta["guard"]
                recent = guard.get("recent", 0)
                judged = f"{guard['images'] - recent} held-out" + (f" + {recent} latest saves" if recent else "")
                trained = {"top": "top", "whole": "whole network"}.get(entry.meta.get("job"), "whole network")
                lines.append(f"| {entry.version} | {trained} | {len(entry.meta.get('train_ids', []))} | {judged} | "
                             f"{guard['miou_before']:.3f} → {guard['miou_after']:.3f} | "
                             f"{guard['error_before'] * 100:.1f} → {guard['error_after'] * 100:.1f} % | "
                             f"{guard['verdict']}{' (went live)' if guard.get('promote') else ''} |")
        live = next((e for e in entries if e.version == workspace.live_version(model)), None)
        if live is not None and live.meta.get("learner") == "fast":
            guard = live.meta.get("guard") or {}
            figures = (f": held-out mIoU {guard['miou_before']:.3f} → {guard['miou_after']:.3f} on "
                       f"{ui.plural(guard['images'], 'image')}" if guard.get("images") else "")
            lines += ["", f"Live now: **{live.version}**, learned after a save from "
                          f"{len(live.meta.get('train_ids', []))} samples{figures} ({guard.get('verdict', '?')})."]
        return "\n".join(lines)

    def versions_view(self, model: str, session: Session) -> tuple[list[list[str]], gr.Dropdown]:
        """The version table and the choices for "make live": the shipped weights, every Fine-tune version, and
        of the versions learned after each Save only the live one (or the newest), the others folded into its
        row; "make live" also offers the last few of those that went live, to roll back to."""
        if not model:
            return [], gr.Dropdown(choices=[], value=None)
        workspace = self.workspace(session)
        live = workspace.live_version(model)
        shipped = shipped_weights(model)
        rows = []
        if shipped is None:
            rows.append([SHIPPED, "untrained", "", "–", "", "● live" if live == SHIPPED else ""])
        else:
            val = (shipped.meta.get("metrics") or {}).get("val", {}).get("miou")
            own = shipped.labels.same_classes(workspace.labels)
            figure = "–" if val is None else f"{val:.3f} (val)" if own else f"– (trained for {shipped.labels.name})"
            rows.append([SHIPPED, f"shipped {shipped.version}", "", figure, "", "● live" if live == SHIPPED else ""])
        entries = workspace.versions(model)
        per_save = [e for e in entries if e.meta.get("learner") == "fast"]
        shown = next((e for e in per_save if e.version == live), per_save[-1] if per_save else None)
        went_live = [e for e in per_save if (e.meta.get("guard") or {}).get("promote")]
        for entry in entries:
            if entry.meta.get("learner") == "fast" and entry is not shown:
                continue
            rows.append(self._version_row(entry, live))
            if entry is shown and len(per_save) > 1:
                rows[-1][1] += (f" · newest shown of {len(per_save)} versions learned after saves "
                                f"({len(went_live)} went live)")
        choices = [(f"{r[0]} — {r[1]}{' (live)' if r[5] else ''}", r[0]) for r in rows]
        listed = {r[0] for r in rows}
        choices += [(f"{e.version} — learned after a save (went live)", e.version)
                    for e in went_live[-5:] if e.version not in listed]
        return rows, gr.Dropdown(choices=choices, value=live)

    @staticmethod
    def _version_row(entry, live: str) -> list[str]:
        """[version, origin, the replaced version's mIoU, its own mIoU and what it was judged on, created, live]."""
        guard, metrics = entry.meta.get("guard") or {}, entry.meta.get("metrics") or {}
        if entry.meta.get("learner") == "fast":
            how = "learned after a save"
        else:
            how = {"top": "fine-tuned (top)", "whole": "fine-tuned (whole network)"}.get(entry.meta.get("job"),
                                                                                       "fine-tuned")
        if "miou_before" in guard and guard.get("images"):
            recent = guard.get("recent", 0)
            judged = f"{guard['images'] - recent} held-out" + (f" + {recent} latest saves" if recent else "")
            before, after = f"{guard['miou_before']:.3f}", f"{guard['miou_after']:.3f} ({judged})"
        else:
            old, new = metrics.get("heldout_before", {}), metrics.get("heldout", {})
            before = "–" if "miou" not in old else f"{old['miou']:.3f}"
            after = "–" if "miou" not in new else f"{new['miou']:.3f} (held-out)"
        created = entry.meta.get("created")
        return [entry.version, f"{how} from {entry.meta.get('parent', '?')}", before, after,
                datetime.fromtimestamp(created).strftime("%m-%d %H:%M") if created else "",
                "● live" if live == entry.version else ""]

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
