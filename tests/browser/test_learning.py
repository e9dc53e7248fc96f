"""Learn as you label, in headless Chromium: Save teaches the model, the line under Save says so, and the image
Save moves on to is predicted by the model that learned the save."""

from __future__ import annotations

import numpy as np
import pytest

from segdemo.inference import Predictor
from segdemo.learning.learner import LearnerSettings
from segdemo.store import Workspace
from segdemo.ui import decode_painter_value
from segdemo.web.models import offered_models
from tests.browser.test_browser import choose_model, open_tab, painter_state, save_and_wait, stroke, write_image

pytestmark = pytest.mark.browser
FENCE = 7
STEPS = 60
"""The update's steps, counted, not timed: the default 3 s give U-Net 20-29 steps on an idle 2-core machine and fewer
while Chromium shares it, which turn 0.02-0.3 % of the next image's lower third Fence; 60 steps turn 15 % (7-15 %
over seeds 0-2), SegNet 12 %, FCN 49 % (``python -m benchmarks.one_save``: this scene without the browser)."""


@pytest.mark.parametrize("model", offered_models())
def test_save_then_next_shows_what_the_save_taught(model, serve, page, tmp_path, monkeypatch):
    """For every family the model picker offers."""
    monkeypatch.setattr("segdemo.web.learning.LEARN_WAIT_SECONDS", 60.0)
    url, demo, workspace_dir = serve(learner_settings=LearnerSettings(seconds=600, max_steps=STEPS))
    page.goto(url)
    page.wait_for_selector("#segment-btn")
    choose_model(page, model)
    open_tab(page, "Dataset")
    paths = [write_image(tmp_path, seed) for seed in (51, 52)]
    page.set_input_files("#import-files input[type=file]", [str(p) for p in paths])
    page.wait_for_function("document.querySelector('#import-status').innerText.includes('Imported 2 images')")
    open_tab(page, "Segment & correct")
    page.wait_for_selector("#save-next", state="visible")
    token = painter_state(page)["token"] if page.evaluate("!!window.segdemoPainter") else ""
    page.click("#next-btn")
    page.wait_for_function("t => window.segdemoPainter && window.segdemoPainter.state().token !== t", arg=token)
    first = painter_state(page)

    # Paint the lower third as Fence: a correction the shipped model would never make by itself.
    page.click(f'#legend [data-class="{FENCE}"]')
    height, width = first["h"], first["w"]
    for y in np.arange(height * 2 / 3 + 2, height, 6.0):
        stroke(page, [(1.0, float(y)), (width / 2, float(y) + 0.5), (width - 1.0, float(y))])
    painted = decode_painter_value(page.evaluate("window.segdemoPainter.value()")).mask
    assert (painted[int(height * 2 / 3) + 4:] == FENCE).mean() > 0.9

    token = painter_state(page)["token"]
    save_and_wait(page)
    page.wait_for_function("document.querySelector('#learn-status').innerText.includes('learned from 1 sample')",
                           timeout=60_000)
    assert "v1 live" in page.inner_text("#learn-status")
    page.wait_for_function("t => window.segdemoPainter.state().token !== t", arg=token, timeout=60_000)
    assert "workspace v1" in painter_state(page)["title"]

    workspace = Workspace(workspace_dir)
    queued = workspace.list_unlabelled()
    assert len(queued) == 1
    shown = decode_painter_value(page.evaluate("window.segdemoPainter.value()")).mask
    before = Predictor.from_weights(model).predict(workspace.load_image(queued[0].id)).mask
    lower = slice(int(height * 2 / 3) + 4, None)
    # The shipped models paint (almost) none of it Fence, so a larger share is the save's doing (STEPS).
    assert (shown[lower] == FENCE).mean() > (before[lower] == FENCE).mean() + 0.02, \
        "the next image's prediction reflects the save"
