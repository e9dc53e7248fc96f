"""A new user's first session in headless Chromium at 1400x1000: upload, Segment, a stroke, Save; import, Next image,
Segment. Checks that every panel names and shows the one image in the editor, that the first stroke on a fresh page
paints the class the user meant (none before a class is picked), that no pop-up appears without a queue, and that the
editor is in view without scrolling."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from segdemo.store import Workspace
from segdemo.ui import decode_painter_value
from tests.browser.test_browser import (SHOTS, canvas_box, choose_model, open_tab, painter_state, read_mask,
                                        save_and_wait, stroke, to_client, upload_and_segment, write_image)

pytestmark = pytest.mark.browser
FENCE = 7
TOASTS = '[data-testid="toast-body"]'


def shown_pixels(page, selector: str) -> np.ndarray:
    """The RGB pixels of the picture an <img> under ``selector`` shows, fetched from the server."""
    src = page.get_attribute(f"{selector} img", "src")
    response = page.request.get(src)
    assert response.ok, src
    with Image.open(io.BytesIO(response.body())) as image:
        return np.asarray(image.convert("RGB"))


def label(page, selector: str) -> str:
    return (page.locator(f"{selector} [data-testid=block-label]").first.text_content() or "").strip()


def assert_one_image(page, name: str, pixels: np.ndarray) -> None:
    """The Image box, the status, the editor, the Save status and the Views panel all name ``name``; the Image box
    shows ``pixels`` and the editor and the Views panel have its size."""
    page.wait_for_function("n => (document.querySelector('#image-input [data-testid=block-label]') || {})"
                           ".textContent?.trim() === n", arg=name)
    assert name in page.inner_text("#segment-status")
    assert name in page.inner_text("#save-status") and "not saved yet" in page.inner_text("#save-status")
    state = painter_state(page)
    assert state["title"].startswith(name) and (state["h"], state["w"]) == pixels.shape[:2]
    assert page.inner_text("#editor .sdp-title").startswith(f"Editing {name}")
    if not page.locator("#overlay").is_visible():  # the Views panel starts closed
        page.get_by_text("Confidence, mask and download").click()
        page.wait_for_selector("#overlay img", state="visible")
    assert label(page, "#overlay") == f"View of {name}"
    assert np.array_equal(shown_pixels(page, "#image-input"), pixels)
    assert shown_pixels(page, "#overlay").shape == pixels.shape


def test_first_session_one_image_intended_class_no_popup(serve, page, tmp_path):
    url, demo, workspace_dir = serve()
    page.goto(url)
    page.wait_for_selector("#segment-btn")
    photo = write_image(tmp_path, 31)
    pixels = np.asarray(Image.open(photo).convert("RGB"))
    state = upload_and_segment(page, photo)
    assert_one_image(page, photo.name, pixels)
    page.evaluate("window.segdemoPainter.setFill(false)")  # a stroke paints exactly its class (fill-in: test_strokes)

    # The editor, the legend and Save are in view at 1400x1000 without scrolling (page coordinates).
    for selector in ("#editor canvas.sdp-canvas", "#legend", "#save-btn", "#save-status"):
        top, bottom = page.eval_on_selector(selector, "e => { const r = e.getBoundingClientRect(); "
                                                      "return [r.top + scrollY, r.bottom + scrollY]; }")
        assert 0 <= top and min(bottom, top + 40) <= 1000, (selector, top, bottom)
    canvas_top, canvas_bottom = page.eval_on_selector("#editor canvas.sdp-canvas", "e => { const r = "
                                                      "e.getBoundingClientRect(); return [r.top + scrollY, "
                                                      "r.bottom + scrollY]; }")
    assert canvas_top < 450 and canvas_bottom <= 1000
    page.screenshot(path=str(SHOTS / "first-1-segmented.png"))

    # A fresh page has no brush class: a stroke paints nothing and the hint says why.
    assert state["cls"] == -1
    page.wait_for_selector("#editor .sdp-pick-hint", state="visible")
    stroke(page, [(40.0, 60.0), (120.0, 70.0)])
    state = painter_state(page)
    assert state["changed"] == 0 and state["undo"] == 0 and "pick a class first" in state["message"]

    # Pick class (Alt+click) takes the class under the pointer.
    mask = decode_painter_value(page.evaluate("window.segdemoPainter.value()")).mask
    x, y = 30.5, 150.5
    page.keyboard.down("Alt")
    page.mouse.click(*to_client(page, canvas_box(page), state, x, y))
    page.keyboard.up("Alt")
    assert painter_state(page)["cls"] == int(mask[int(y), int(x)])
    assert painter_state(page)["changed"] == 0

    # The class the user means, clicked in the legend, is what the first stroke paints.
    page.click(f'#legend [data-class="{FENCE}"]')
    page.wait_for_selector("#editor .sdp-pick-hint", state="hidden")
    assert painter_state(page)["cls"] == FENCE
    stroke(page, [(40.3, 60.2), (150.1, 62.8)])
    sample_id = save_and_wait(page)
    saved = read_mask(workspace_dir / "masks" / f"{sample_id}.png")
    changed = saved != read_mask(workspace_dir / "predictions" / f"{sample_id}.png")
    assert changed.any() and (saved[changed] == FENCE).all()
    assert photo.name in page.inner_text("#save-status")

    # No queue: no pop-up after Save, no "moves on" option, and the queue line says how to get one.
    page.wait_for_timeout(1500)
    assert page.locator(TOASTS).count() == 0
    assert not page.locator("#save-next").is_visible()
    assert "No images queued" in page.inner_text("#queue-status")

    # Import two images, then Next: every panel follows the queued image.
    open_tab(page, "Dataset")
    queued_paths = [write_image(tmp_path, seed) for seed in (32, 33)]
    page.set_input_files("#import-files input[type=file]", [str(p) for p in queued_paths])
    page.wait_for_function("document.querySelector('#import-status').innerText.includes('Imported 2 images')")
    assert "1 saved sample " in page.inner_text("#dataset-summary") + " "
    open_tab(page, "Segment & correct")
    page.wait_for_selector("#save-next", state="visible")
    choose_model(page, "fcn8s_lite0")
    token = painter_state(page)["token"]
    page.click("#next-btn")
    page.wait_for_function("t => window.segdemoPainter.state().token !== t", arg=token)
    name = re.search(r"Next: (\S+)", page.inner_text("#segment-status")).group(1)
    workspace = Workspace(workspace_dir)
    queued = next(s for s in workspace.list_unlabelled() if s.source_name == name)
    queued_pixels = workspace.load_image(queued.id)
    assert_one_image(page, name, queued_pixels)
    page.screenshot(path=str(SHOTS / "first-2-next.png"))

    # Segment acts on what the editor shows: the queued image, which Save then labels.
    token = painter_state(page)["token"]
    page.click("#segment-btn")
    page.wait_for_function("t => window.segdemoPainter.state().token !== t", arg=token)
    assert_one_image(page, name, queued_pixels)
    assert painter_state(page)["cls"] == FENCE  # the class picked stays picked
    stroke(page, [(20.0, 100.0), (80.0, 110.0)])
    assert save_and_wait(page) == queued.id
    assert len(workspace.list_samples()) == 2 and len(workspace.list_unlabelled()) == 1
    assert page.locator(TOASTS).count() == 0


def test_finetune_tab_says_what_it_can_do_before_the_first_run(serve, page, tmp_path):
    """Empty charts are a sentence, not an empty frame with console warnings; one saved sample is one visible
    point; the Fine-tune button is off while a run could not start, and says so."""
    url, demo, workspace_dir = serve()
    warnings = []
    page.on("console", lambda message: warnings.append(message.text) if message.type in ("warning", "error")
            else None)
    page.goto(url)
    page.wait_for_selector("#segment-btn")
    open_tab(page, "Fine-tune")
    page.wait_for_function("document.querySelector('#trend-note').innerText.includes('Each saved sample')")
    assert "loss is drawn here" in page.inner_text("#loss-note")
    assert not page.locator("#loss-plot").is_visible() and not page.locator("#trend-plot").is_visible()
    assert page.is_disabled("#finetune-btn") and "needs more samples" in page.inner_text("#finetune-btn")
    assert "0 train samples and 0 held-out samples" in page.inner_text("#finetune-intro")

    open_tab(page, "Segment & correct")
    upload_and_segment(page, write_image(tmp_path, 41))
    page.keyboard.press("Escape")
    page.locator("#editor .sdp").focus()
    page.keyboard.press("Shift+Digit1")  # the 11th class has a key
    assert painter_state(page)["cls"] == 10
    stroke(page, [(40.0, 60.0), (150.0, 62.0)])
    save_and_wait(page)
    open_tab(page, "Fine-tune")
    page.wait_for_selector("#trend-plot .mark-symbol path", state="attached")
    assert page.locator("#trend-plot .mark-symbol path").count() == 1
    assert page.inner_text("#trend-note").strip() == ""
    assert "1 train sample and 0 held-out samples" in page.inner_text("#finetune-intro")
    assert not [w for w in warnings if "Infinite extent" in w], warnings
    page.screenshot(path=str(SHOTS / "first-3-finetune.png"))
