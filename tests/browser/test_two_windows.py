"""Two people on one app in headless Chromium, each in their own browser context: Next hands them different images;
both open the same saved sample from the Dataset tab and both save it: the second is refused with who saved it,
the first mask stays on disk, "Save mine" stores a new revision and the sample's history lists them all; a reload
keeps the name the browser set."""

from __future__ import annotations

import re

import numpy as np
import pytest

from segdemo.ui import decode_painter_value
from tests.browser.conftest import SHOTS
from tests.browser.test_browser import SAVED, open_tab, painter_state, read_mask, save_and_wait, stroke, write_image
from tests.drawing import draw_scene

pytestmark = pytest.mark.browser
FENCE, CAR = 7, 8


def window(browser, url: str, name: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector("#segment-btn")
    page.fill("#author-name textarea, #author-name input", name)
    page.wait_for_function("n => (document.querySelector('#author-note')?.innerText || '').includes(n)", arg=name)
    return context, page


def press_next(page) -> str:
    token = page.evaluate("window.segdemoPainter ? window.segdemoPainter.state().token : ''")
    page.click("#next-btn")
    page.wait_for_function("t => window.segdemoPainter && window.segdemoPainter.state().token !== t", arg=token)
    return re.search(r"queued sample (\S+?),", page.inner_text("#segment-status")).group(1)


def paint(page, cls: int, points) -> np.ndarray:
    """A stroke of ``cls`` (fill-in off, so exactly the stroke changes) → the mask the editor now holds."""
    page.evaluate("window.segdemoPainter.setFill(false)")
    page.click(f'#legend [data-class="{cls}"]')
    stroke(page, points)
    return decode_painter_value(page.evaluate("window.segdemoPainter.value()")).mask


def open_from_dataset(page, sample_id: str) -> None:
    open_tab(page, "Dataset")
    page.wait_for_selector("#dataset-gallery img")
    page.locator("#dataset-gallery img").first.click()
    page.wait_for_function("i => document.querySelector('#dataset-selection').innerText.includes(i)", arg=sample_id)
    token = painter_state(page)["token"]
    page.click("#open-btn")
    page.wait_for_function("t => window.segdemoPainter.state().token !== t", arg=token)


def test_two_windows_get_different_images_and_a_stale_save_is_refused(serve, browser, tmp_path):
    url, demo, workspace_dir = serve()
    workspace = demo.segdemo_app.workspace()
    for seed in (51, 52, 53):
        workspace.add_unlabelled(draw_scene(seed, 180, 240)[0], source_name=write_image(tmp_path, seed).name)
    alice_context, alice = window(browser, url, "alice")
    bob_context, bob = window(browser, url, "bob")
    try:
        first, second = press_next(alice), press_next(bob)
        assert first != second
        bob.wait_for_function("document.querySelector('#queue-status').innerText.includes('1 open in another window')")

        alice.uncheck("#save-next input")
        paint(alice, FENCE, [(30.0, 40.0), (120.0, 45.0)])
        assert save_and_wait(alice) == first

        open_from_dataset(alice, first)
        open_from_dataset(bob, first)
        hers = paint(alice, CAR, [(40.0, 120.0), (150.0, 125.0)])
        mine = paint(bob, FENCE, [(60.0, 150.0), (200.0, 155.0)])
        assert save_and_wait(alice) == first
        previous = bob.inner_text("#save-status")
        bob.click("#save-btn")
        bob.wait_for_function(SAVED, arg=previous)
        refused = bob.inner_text("#save-status")
        assert "Not saved" in refused and "alice" in refused, refused
        assert np.array_equal(read_mask(workspace_dir / "masks" / f"{first}.png"), hers)
        bob.wait_for_selector("#save-mine-btn", state="visible")
        bob.screenshot(path=str(SHOTS / "team-1-refused.png"))

        previous = bob.inner_text("#save-status")
        bob.click("#save-mine-btn")
        bob.wait_for_function(SAVED, arg=previous)
        assert "Saved" in bob.inner_text("#save-status")
        bob.wait_for_selector("#save-mine-btn", state="hidden")
        assert np.array_equal(read_mask(workspace_dir / "masks" / f"{first}.png"), mine)
        assert [(r.n, r.author) for r in workspace.history(first)] == [(3, "bob"), (2, "alice"), (1, "alice")]

        open_tab(bob, "Dataset")
        bob.locator("#dataset-gallery img").first.click()
        bob.get_by_text("History of the selected sample").click()
        bob.wait_for_function("document.querySelector('#history-table [role=grid]')"
                              "?.getAttribute('aria-rowcount') === '4'")  # the header and three revisions
        bob.screenshot(path=str(SHOTS / "team-2-history.png"), full_page=True)

        bob.reload()  # the browser remembers the name it set
        bob.wait_for_selector("#segment-btn")
        bob.wait_for_function("(document.querySelector('#author-note')?.innerText || '').includes('bob')")
        assert bob.input_value("#author-name textarea, #author-name input") == "bob"
    finally:
        alice_context.close()
        bob_context.close()
