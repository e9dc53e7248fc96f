"""The real app in headless Chromium: upload → Segment → paint → Save (mask checked pixel by pixel), re-open,
undo / redo, flood fill, export; a fine-tune from the browser; the /predict API through gradio_client."""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segdemo import tools
from tests.drawing import CAR, draw_scene
from segdemo.store import Workspace

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/shots")
MODEL = "fcn8s_lite0"  # the default, offered model


def write_image(directory: Path, seed: int) -> Path:
    path = directory / f"drawn-{seed}.png"
    Image.fromarray(draw_scene(seed, 180, 240)[0]).save(path)
    return path


def read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "P"
        return np.asarray(image).copy()


def painter_state(page) -> dict:
    return page.evaluate("window.segdemoPainter.state()")


def upload_and_segment(page, path: Path, model: str = MODEL) -> dict:
    """Upload ``path``, choose ``model``, press Segment; wait until the editor holds the new image."""
    old_token = page.evaluate("window.segdemoPainter ? window.segdemoPainter.state().token : ''")
    page.set_input_files("#image-input input[type=file]", str(path))
    page.wait_for_selector("#image-input img", state="visible")
    choose_model(page, model)
    page.click("#segment-btn")
    page.wait_for_function("t => window.segdemoPainter && window.segdemoPainter.state().w > 0 && "
                           "window.segdemoPainter.state().token !== t", arg=old_token)
    return painter_state(page)


def choose_model(page, model: str) -> None:
    current = page.input_value("#model-select input")
    if current.split(" ")[0] == model:
        return
    page.click("#model-select input")
    page.locator("ul[role=listbox] li", has_text=model).first.click()
    page.wait_for_function(f"document.querySelector('#model-select input').value.startsWith('{model}')")


def canvas_box(page) -> dict:
    return page.eval_on_selector("#editor canvas.sdp-canvas", "c => { const r = c.getBoundingClientRect(); "
                                 "return {left: r.left, top: r.top, width: r.width, height: r.height}; }")


def to_client(page, box: dict, state: dict, x: float, y: float) -> tuple[float, float]:
    return box["left"] + x / state["w"] * box["width"], box["top"] + y / state["h"] * box["height"]


def stroke(page, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Drag the brush through image-pixel ``points``; returns the points as the painter maps them back."""
    page.locator("#editor canvas.sdp-canvas").scroll_into_view_if_needed()
    state, box = painter_state(page), canvas_box(page)
    clients = [to_client(page, box, state, x, y) for x, y in points]
    page.mouse.move(*clients[0])
    page.mouse.down()
    for cx, cy in clients[1:]:
        page.mouse.move(cx, cy, steps=3)
    page.mouse.up()
    return [((cx - box["left"]) / box["width"] * state["w"], (cy - box["top"]) / box["height"] * state["h"])
            for cx, cy in clients]


def distance_to_path(shape: tuple[int, int], path: list[tuple[float, float]]) -> np.ndarray:
    """Distance of every pixel centre to the polyline ``path`` (image pixel units)."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64) + 0.5
    best = np.full(shape, np.inf)
    segments = list(zip(path[:-1], path[1:])) or [(path[0], path[0])]
    for (ax, ay), (bx, by) in segments:
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = np.zeros(shape) if length2 == 0 else np.clip(((xs - ax) * dx + (ys - ay) * dy) / length2, 0, 1)
        best = np.minimum(best, np.hypot(xs - (ax + t * dx), ys - (ay + t * dy)))
    return best


SAVED = """previous => {
  const status = document.querySelector('#save-status');
  const tracker = status.querySelector('[data-testid=status-tracker]');
  const idle = !tracker || tracker.classList.contains('hide');
  return idle && status.innerText !== previous && /Saved|⚠/.test(status.innerText);
}"""


def save_and_wait(page) -> str:
    """Press Save; wait until the status line shows the new result; return the saved sample id."""
    previous = page.inner_text("#save-status")
    page.click("#save-btn")
    page.wait_for_function(SAVED, arg=previous)
    text = page.inner_text("#save-status")
    assert "Saved" in text, text
    return saved_id(text)


def saved_id(text: str) -> str:
    """The sample id in a Save status: ``Saved NAME to the`` or ``Saved NAME as sample ID to the``."""
    found = re.search(r"Saved \**(\S+?)\**(?: as sample \**(\S+?)\**)? to the", text)
    return found.group(2) or found.group(1)


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def test_segment_paint_save_reopen_fill_export(serve, page, tmp_path):
    url, demo, workspace_dir = serve()
    page.goto(url)
    page.wait_for_selector("#segment-btn")
    image_path = write_image(tmp_path, 1)
    state = upload_and_segment(page, image_path)
    assert (state["w"], state["h"]) == (240, 180)
    assert painter_state(page)["fillOn"], "the fill-in from strokes is on by default"
    page.evaluate("window.segdemoPainter.setFill(false)")  # this test checks that each tool paints exactly its pixels
    assert MODEL in page.inner_text("#segment-status")
    page.screenshot(path=str(SHOTS / "1-segment.png"), full_page=True)

    # Pick Fence with the number key, a 9-px brush with the slider, and paint a short stroke.
    page.locator("#editor .sdp").focus()
    page.keyboard.press("8")
    page.locator("#editor .sdp-size").fill("9")
    state = painter_state(page)
    assert state["cls"] == 7 and state["size"] == 9 and state["tool"] == "brush"
    path = stroke(page, [(40.3, 60.2), (90.7, 70.4), (150.1, 62.8)])
    state = painter_state(page)
    assert state["changed"] > 0 and state["undo"] == 1
    page.screenshot(path=str(SHOTS / "2-editing.png"), full_page=True)

    sample_id = save_and_wait(page)
    workspace = Workspace(workspace_dir)
    assert [s.id for s in workspace.list_samples()] == [sample_id]
    prediction = read_mask(workspace_dir / "predictions" / f"{sample_id}.png")
    saved = read_mask(workspace_dir / "masks" / f"{sample_id}.png")
    assert saved.shape == prediction.shape == (180, 240)
    changed = saved != prediction
    assert changed.sum() == state["changed"]
    assert (saved[changed] == 7).all(), "painted pixels must hold exactly the chosen class"
    distance = distance_to_path(saved.shape, path)
    radius = 9 / 2
    assert distance[changed].max() <= radius + 1.0, "nothing may change outside the stroke"
    core = (distance <= radius - 1.0) & (prediction != 7)
    assert changed[core].all(), "every pixel under the stroke must be painted"

    # Dataset tab: select the sample and re-open it in the editor.
    open_tab(page, "Dataset")
    page.wait_for_selector("#dataset-gallery button img, #dataset-gallery img")
    page.locator("#dataset-gallery img").first.click()
    page.wait_for_function(f"document.querySelector('#dataset-selection').innerText.includes('{sample_id}')")
    page.screenshot(path=str(SHOTS / "3-dataset.png"), full_page=True)
    old_token = painter_state(page)["token"]
    page.click("#open-btn")
    page.wait_for_function("t => window.segdemoPainter.state().token !== t", arg=old_token)
    page.wait_for_selector("#editor canvas.sdp-canvas", state="visible")
    state = painter_state(page)
    assert state["changed"] == int(changed.sum()) and state["undo"] == 0

    # Undo / redo of a second stroke leaves the mask as it was.
    absent = next(c for c in range(10) if not (saved[140:170, 190:230] == c).any())
    page.locator("#editor .sdp").focus()
    page.keyboard.press(str((absent + 1) % 10))
    assert painter_state(page)["cls"] == absent
    stroke(page, [(200.0, 150.0), (220.0, 160.0)])
    assert painter_state(page)["undo"] == 1
    page.click("#editor [data-act=undo]")
    assert painter_state(page)["changed"] == int(changed.sum())
    page.click("#editor [data-act=redo]")
    assert painter_state(page)["redo"] == 0
    page.keyboard.press("Control+z")
    state = painter_state(page)
    assert state["changed"] == int(changed.sum()) and state["redo"] == 1

    # Flood fill with the class picked in the legend: exactly the connected region under the click.
    page.click('#legend [data-class="2"]')
    page.keyboard.press("f")
    assert painter_state(page)["cls"] == 2 and painter_state(page)["tool"] == "fill"
    fx, fy = 17, 130
    page.locator("#editor canvas.sdp-canvas").scroll_into_view_if_needed()
    box, state = canvas_box(page), painter_state(page)
    page.mouse.click(*to_client(page, box, state, fx + 0.5, fy + 0.5))
    expected = tools.flood_fill(saved, fx, fy, 2)
    assert save_and_wait(page) == sample_id
    assert len(workspace.list_samples()) == 1
    resaved = read_mask(workspace_dir / "masks" / f"{sample_id}.png")
    assert np.array_equal(resaved, expected), "fill must change exactly the connected region"
    assert np.array_equal(read_mask(workspace_dir / "predictions" / f"{sample_id}.png"), prediction)

    # Export the dataset as a zip.
    open_tab(page, "Dataset")
    page.click("#export-btn")
    link = page.locator("#export-file a").first
    link.wait_for(state="visible")
    with page.expect_download() as info:
        link.click()
    with zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes())) as archive:
        names = set(archive.namelist())
        zipped_mask = np.asarray(Image.open(io.BytesIO(archive.read(f"masks/{sample_id}.png"))))
    assert {f"images/{sample_id}.png", f"predictions/{sample_id}.png", "labels.json", "splits/all.txt"} <= names
    assert np.array_equal(zipped_mask, expected)


def test_bad_upload_shows_a_message_and_server_keeps_serving(serve, page, tmp_path):
    url, demo, workspace_dir = serve()
    page.goto(url)
    page.wait_for_selector("#segment-btn")
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"definitely not an image")
    page.set_input_files("#image-input input[type=file]", str(bad))
    page.wait_for_timeout(1500)
    page.click("#segment-btn")
    page.wait_for_selector("text=not an image file")
    page.screenshot(path=str(SHOTS / "5-bad-upload.png"))
    assert not (workspace_dir / "images").exists() or not any((workspace_dir / "images").iterdir())
    page.goto(url)  # the server still answers and segments a good image
    page.wait_for_selector("#segment-btn")
    upload_and_segment(page, write_image(tmp_path, 5))


def test_finetune_from_the_browser(serve, page, tmp_path):
    from segdemo.learning.finetune_settings import FinetuneSettings, TopPathSettings, WholePathSettings

    # No early stopping and more steps than any budget allows, so that a run lasts its whole budget (and a long one
    # lasts until cancelled).
    url, demo, workspace_dir = serve(finetune_seconds=5, finetune_settings=FinetuneSettings(
        top=TopPathSettings(min_steps=1_000_000, max_steps=1_000_000), whole=WholePathSettings(patience=10_000)))
    page.goto(url)
    page.wait_for_selector("#segment-btn")
    for seed in range(3):
        upload_and_segment(page, write_image(tmp_path, 10 + seed))
        if seed == 0:
            page.locator("#editor .sdp").focus()
            page.keyboard.press("4")
            stroke(page, [(20.0, 120.0), (200.0, 130.0)])
        save_and_wait(page)
    workspace = Workspace(workspace_dir)
    assert len(workspace.list_samples()) == 3
    assert {s.split for s in workspace.list_samples()} == {"train", "heldout"}

    open_tab(page, "Fine-tune")
    page.wait_for_function("() => { const m = document.querySelector('#finetune-intro').innerText"
                           ".match(/(\\d+) train.*?(\\d+) held-out/); return m && +m[1] + +m[2] === 3; }")
    assert page.input_value("#finetune-seconds input[type=number]") == "5"
    page.click("#finetune-btn")
    page.wait_for_selector("#finetune-progress [data-status=running], #finetune-progress [data-status=done]")
    page.click("#finetune-btn")  # a second press while running only warns
    page.wait_for_selector("text=already running")
    page.wait_for_selector("#finetune-result", state="visible", timeout=240_000)
    page.wait_for_function("document.querySelector('#finetune-result').innerText.includes('mIoU (held-out)')")
    summary = page.inner_text("#finetune-summary")
    assert re.search(r"held-out mIoU \d\.\d{3} → \d\.\d{3}", summary), summary
    assert re.search(r"\bon 1 (held-out )?image\b", summary) and ("too few" in summary or "worse" in summary), summary
    progress = page.inner_text("#finetune-progress")
    assert "NOT promoted" in progress
    version = re.search(rf"{MODEL} (v\d+) NOT promoted", progress).group(1)  # the fast learner may own v1, v2...
    assert version in page.inner_text("#versions")
    page.screenshot(path=str(SHOTS / "4-finetune.png"), full_page=True)
    assert version in [e.version for e in workspace.versions(MODEL)]

    # Roll back to the shipped weights with the version list.
    page.click("#version-select input")
    page.locator("ul[role=listbox] li", has_text="shipped").first.click()
    page.click("#make-live-btn")
    page.wait_for_function("document.querySelector('#live-status').innerText.includes('shipped')")
    assert workspace.live_version(MODEL) == "shipped"
    versions = [e.version for e in workspace.versions(MODEL)]

    # A long fine-tune is cancelled: no new version, the live pointer untouched.
    page.fill("#finetune-seconds input[type=number]", "300")
    page.locator("#finetune-seconds input[type=number]").blur()
    page.wait_for_timeout(300)
    page.click("#finetune-btn")
    page.wait_for_selector("#finetune-progress [data-status=running]")
    page.wait_for_timeout(1500)
    page.click("#cancel-btn")
    page.wait_for_selector("#finetune-progress [data-status=cancelled]", timeout=120_000)
    assert [e.version for e in workspace.versions(MODEL)] == versions
    assert workspace.live_version(MODEL) == "shipped"


def test_predict_api_with_gradio_client(serve, tmp_path):
    gradio_client = pytest.importorskip("gradio_client")
    url, demo, workspace_dir = serve()
    client = gradio_client.Client(url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)
    assert sorted(api["named_endpoints"]) == ["/next", "/predict", "/save"]
    path = write_image(tmp_path, 7)
    result = client.predict(gradio_client.handle_file(str(path)), MODEL, api_name="/predict")
    overlay_path, legend, status = result
    with Image.open(overlay_path) as overlay:
        assert overlay.size == (240, 180)
    assert MODEL in status and "Sky" in legend
    with pytest.raises(Exception, match="not an image"):
        bad = tmp_path / "bad.jpg"
        bad.write_bytes(b"nope")
        client.predict(gradio_client.handle_file(str(bad)), MODEL, api_name="/predict")
    assert not (workspace_dir / "images").exists()


def test_save_api_and_upload_size_limit(serve, tmp_path):
    gradio_client = pytest.importorskip("gradio_client")
    from segdemo.ui import painter_value

    url, demo, workspace_dir = serve()
    client = gradio_client.Client(url, verbose=False)
    path = write_image(tmp_path, 11)
    client.predict(gradio_client.handle_file(str(path)), MODEL, api_name="/predict")
    corrected = np.full((180, 240), 3, dtype=np.uint8)
    corrected[:50] = 0
    status = client.predict(painter_value(corrected, ""), api_name="/save")
    sample_id = saved_id(status)
    assert np.array_equal(read_mask(workspace_dir / "masks" / f"{sample_id}.png"), corrected)

    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(26 * 1024 * 1024))
    with pytest.raises(Exception, match="maximum file size"):
        client.predict(gradio_client.handle_file(str(big)), MODEL, api_name="/predict")
    assert len(list((workspace_dir / "images").iterdir())) == 1
    assert client.predict(gradio_client.handle_file(str(path)), MODEL, api_name="/predict")[2]


def drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at image pixel ``start``, move to ``end`` and release (the GrabCut box)."""
    page.locator("#editor canvas.sdp-canvas").scroll_into_view_if_needed()
    state, box = painter_state(page), canvas_box(page)
    page.mouse.move(*to_client(page, box, state, *start))
    page.mouse.down()
    page.mouse.move(*to_client(page, box, state, *end), steps=6)
    page.mouse.up()


def test_import_next_superpixels_grabcut_save_and_move_on(serve, page, tmp_path):
    """Import three images, press N for the most uncertain one, correct it with the superpixel brush and a GrabCut
    box, save (which opens the next one); the saved mask is exactly what the two tools produced."""
    from segdemo.queue import load_scores

    url, demo, workspace_dir = serve()
    app = demo.segdemo_app
    paths = [write_image(tmp_path, seed) for seed in (21, 22, 23)]
    page.goto(url)
    page.wait_for_selector("#segment-btn")
    open_tab(page, "Dataset")
    page.set_input_files("#import-files input[type=file]", [str(p) for p in paths])
    page.wait_for_function("document.querySelector('#import-status').innerText.includes('Imported 3 images')")
    workspace = Workspace(workspace_dir)
    ids = [s.id for s in workspace.list_unlabelled()]
    assert len(ids) == 3 and workspace.list_samples() == []
    version = app.predictors.get(workspace, MODEL).version
    scorer = app._scorers[str(workspace.root)]
    scorer.join(120)
    scores = load_scores(workspace, MODEL, version)
    assert sorted(scores) == sorted(ids)
    most_uncertain = max(ids, key=lambda i: scores[i])
    page.wait_for_selector("#samples-table")

    open_tab(page, "Segment & correct")
    choose_model(page, MODEL)
    page.locator("body").press("n")
    page.wait_for_function("() => window.segdemoPainter && window.segdemoPainter.state().superpixels")
    page.evaluate("window.segdemoPainter.setFill(false)")  # the saved mask must be exactly what the tools painted
    assert most_uncertain in page.inner_text("#segment-status")
    image = workspace.load_image(most_uncertain)
    segments = tools.superpixels(image)

    page.locator("#editor .sdp").focus()
    page.keyboard.press("d")
    assert painter_state(page)["doubt"]
    page.keyboard.press("3")  # Pole
    page.keyboard.press("s")
    assert painter_state(page)["tool"] == "superpixel"
    stroke(page, [(30.2, 40.4), (120.6, 45.3), (200.1, 60.7)])
    touched = painter_state(page)["lastSegments"]
    assert touched, "the stroke must paint superpixels"

    seed = int(workspace.sample_meta(most_uncertain).source_name.split("-")[1].split(".")[0])
    rows, cols = np.nonzero(draw_scene(seed, 180, 240)[1] == CAR)
    page.keyboard.press("9")  # Car
    page.keyboard.press("g")
    drag(page, (cols.min() - 5.3, rows.min() - 5.2), (cols.max() + 6.4, rows.max() + 6.1))
    page.wait_for_function("() => window.segdemoPainter.state().lastGrabcut")
    grab = painter_state(page)["lastGrabcut"]
    assert grab["cls"] == 8 and grab["pixels"] > 0
    page.screenshot(path=str(SHOTS / "6-queue-tools.png"), full_page=True)

    first_token = painter_state(page)["token"]
    assert save_and_wait(page) == most_uncertain
    page.wait_for_function("t => window.segdemoPainter.state().token !== t && window.segdemoPainter.state().w > 0",
                           arg=first_token)
    prediction = read_mask(workspace_dir / "predictions" / f"{most_uncertain}.png")
    expected = tools.paint_superpixels(prediction, segments, touched, 2)
    expected[tools.grabcut(image, tuple(grab["box"]))] = 8
    saved = read_mask(workspace_dir / "masks" / f"{most_uncertain}.png")
    assert np.array_equal(saved, expected), "the saved mask holds exactly what the two tools produced"
    assert [s.id for s in workspace.list_samples()] == [most_uncertain]
    # Save moved on to another queued image; which one depends on the scores of the version live by then (the
    # fast learner may have put a new one live, whose scores come later).
    following = re.search(r"queued sample (\S+?),", page.inner_text("#segment-status")).group(1)
    assert following in ids and following != most_uncertain
    assert painter_state(page)["title"].startswith(workspace.sample_meta(following).source_name)

    open_tab(page, "Dataset")  # the table shown before the save is replaced once the tab's refresh lands
    page.wait_for_function("(t => t.includes('corrected') || t.includes('held out'))"
                           "(document.querySelector('#samples-table').innerText)", timeout=20_000)
    table = page.inner_text("#samples-table")
    assert table.count("unlabelled") == 2 and ("corrected" in table or "held out" in table)
