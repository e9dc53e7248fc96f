"""Fill-in from strokes in headless Chromium: a new label set's workspace shows no prediction, two strokes fill in a
drawn object, undo and redo take the fill-in with them, and Save keeps the painted pixels apart."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segdemo.labels import LabelSet
from segdemo.store import Workspace
from segdemo.ui import decode_painter_value
from segdemo.web.models import offered_models
from tests.browser.test_browser import painter_state, save_and_wait, stroke, upload_and_segment
from tests.drawing import ANIMALS, draw_animal

pytestmark = pytest.mark.browser
LABELS = LabelSet(name="animals", names=ANIMALS, colors=((0, 0, 0), (230, 150, 40), (110, 70, 40)))
CAT = 1


def editor_value(page):
    return decode_painter_value(page.evaluate("window.segdemoPainter.value()"))


@pytest.mark.parametrize("model", offered_models())
def test_two_strokes_fill_in_a_drawn_cat_in_a_new_workspace(model, serve, page, tmp_path):
    """For every family the picker offers."""
    Workspace(tmp_path / "ws0", labels=LABELS)  # the workspace the app opens: a new label set
    url, demo, workspace_dir = serve()
    image, mask = draw_animal(11, CAT, 192, 256)
    path = tmp_path / "drawn-cat.png"
    Image.fromarray(image).save(path)
    page.goto(url)
    page.wait_for_selector("#segment-btn")
    state = upload_and_segment(page, path, model)
    assert state["cold"] and state["fillOn"] and state["fillable"]
    page.wait_for_selector("#editor .sdp-cold-hint", state="visible")
    assert (editor_value(page).mask == LABELS.ignore_index).all(), "no prediction: the classifier learned nothing"

    rows, cols = np.nonzero(mask == CAT)
    cy, left, right = float(rows.mean()), float(cols.min()), float(cols.max())
    page.locator("#editor .sdp").focus()
    page.keyboard.press("2")  # cat
    stroke(page, [(left + (right - left) * 0.3, cy), (left + (right - left) * 0.7, cy + 0.5)])
    assert "paint a stroke of each class" in painter_state(page)["message"]
    one_stroke = editor_value(page)
    assert painter_state(page)["fills"] == 0

    grass_row = 12.0 if cy > mask.shape[0] / 2 else mask.shape[0] - 12.0
    page.keyboard.press("1")  # background
    stroke(page, [(10.0, grass_row), (mask.shape[1] / 2, grass_row + 0.5), (mask.shape[1] - 10.0, grass_row)])
    page.wait_for_function("() => window.segdemoPainter.state().fills >= 1", timeout=30_000)
    state = painter_state(page)
    assert state["message"].startswith("filled in from 2 strokes in "), state["message"]
    value = editor_value(page)
    filled_cat = value.mask == CAT
    assert filled_cat[mask == CAT].mean() > 0.95, "the editor's mask covers the drawn cat"
    assert (filled_cat & (mask == CAT)).sum() / (filled_cat | (mask == CAT)).sum() > 0.7
    assert value.painted.sum() == state["painted"] > 0
    before_fill = one_stroke.mask
    assert (value.mask[one_stroke.painted] == before_fill[one_stroke.painted]).all(), "painted pixels never change"

    page.click("#editor [data-act=undo]")
    undone = editor_value(page)
    assert np.array_equal(undone.mask, one_stroke.mask), "undo takes the stroke and its fill-in"
    page.click("#editor [data-act=redo]")
    assert np.array_equal(editor_value(page).mask, value.mask), "redo brings both back"

    sample_id = save_and_wait(page)
    workspace = Workspace(workspace_dir)
    meta = workspace.sample_meta(sample_id)
    assert meta.painted_pixels == int(value.painted.sum()) and meta.filled_pixels > 0
    assert np.array_equal(workspace.load_painted(sample_id), value.painted)
