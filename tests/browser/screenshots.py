"""Screenshots of every tab at 1400x1000 for the README, taken in headless Chromium on a fresh workspace.

    python -m tests.browser.screenshots --photo PHOTO --import IMG [IMG ...] --out docs

Walks what a new user does: upload ``PHOTO``, Segment, pick a class, one stroke, Save; import the ``--import``
images, Next image; then photographs each tab (``docs/tab-*.png``) and the Segment tab (``docs/screenshot.png``).
The photo is only read, never copied into the repository beside the PNGs.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, SHOTS, free_port

SIZE = {"width": 1400, "height": 1000}


def take(photo: Path, imports: list[Path], out: Path) -> list[Path]:
    """Drive the app through one session and write the screenshots → their paths."""
    from playwright.sync_api import sync_playwright

    import app

    out.mkdir(parents=True, exist_ok=True)
    demo = app.build_demo(Path(tempfile.mkdtemp(prefix="segdemo-shots-")) / "workspace")
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    shots = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_context(viewport=SIZE).new_page()
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.set_input_files("#image-input input[type=file]", str(photo))
            page.wait_for_selector("#image-input img", state="visible")
            page.click("#segment-btn")
            page.wait_for_function("() => window.segdemoPainter && window.segdemoPainter.state().w > 0")
            page.click('#legend [data-class="4"]')  # Pavement, along the bottom of the picture
            box = page.eval_on_selector("#editor canvas.sdp-canvas", "c => c.getBoundingClientRect().toJSON()")
            page.mouse.move(box["x"] + box["width"] * 0.15, box["y"] + box["height"] * 0.93)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.95, steps=8)
            page.mouse.up()
            page.click("#save-btn")
            page.wait_for_function("document.querySelector('#save-status').innerText.includes('Saved')")
            page.wait_for_timeout(800)
            page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.3)
            shots.append(out / "screenshot.png")
            page.screenshot(path=str(shots[-1]))

            page.get_by_role("tab", name="Dataset").click()
            page.set_input_files("#import-files input[type=file]", [str(p) for p in imports])
            page.wait_for_function("document.querySelector('#import-status').innerText.includes('Imported')")
            page.wait_for_timeout(1500)
            shots.append(out / "tab-dataset.png")
            page.screenshot(path=str(shots[-1]))
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "tab-dataset-full.png"), full_page=True)  # for review, not the README

            page.get_by_role("tab", name="Segment & correct").click()
            token = page.evaluate("window.segdemoPainter.state().token")
            page.click("#next-btn")
            page.wait_for_function("t => window.segdemoPainter.state().token !== t", arg=token)
            page.wait_for_timeout(800)
            shots.append(out / "tab-segment-queue.png")
            page.screenshot(path=str(shots[-1]))

            for tab, name in (("Fine-tune", "tab-finetune.png"), ("Label set", "tab-labels.png")):
                page.get_by_role("tab", name=tab).click()
                page.wait_for_timeout(1500)
                shots.append(out / name)
                page.screenshot(path=str(shots[-1]))
            browser.close()
    finally:
        demo.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, required=True, help="the photo uploaded and segmented first")
    parser.add_argument("--import", dest="imports", type=Path, nargs="+", required=True, help="images to import")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    for path in take(args.photo, args.imports, args.out):
        print(path)


if __name__ == "__main__":
    main()
