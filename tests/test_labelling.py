"""The app's labelling handlers without a browser: import, Next by strategy, GrabCut requests, the samples table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segdemo import tools
from segdemo.queue import load_scores

from tests.drawing import CAR, draw_scene

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # app.py lives at the repository root
    sys.path.insert(0, str(ROOT))
MODEL = "fcn8s_compact"
pytestmark = pytest.mark.filterwarnings("ignore:.*:UserWarning")  # gr.Warning / gr.Info outside a request warn


@pytest.fixture
def imported(tmp_path):
    """The app's handlers after importing four drawn scenes (queue scored) → (handlers, session, ids)."""
    import app

    handlers = app.SegdemoApp(tmp_path / "ws", finetune_seconds=2)
    paths = []
    for seed in range(4):
        paths.append(tmp_path / f"scene-{seed}.png")
        Image.fromarray(draw_scene(seed, 96, 128)[0]).save(paths[-1])
    session = handlers.new_session()
    status, session = handlers.import_files([str(p) for p in paths], MODEL, session, progress=lambda *a, **k: None)
    assert "Imported 4 images" in status
    handlers._scorers[str(handlers.workspace(session).root)].join(120)
    return handlers, session, [s.id for s in handlers.workspace(session).list_unlabelled()]


def test_next_serves_the_most_uncertain_first_or_import_order(imported):
    handlers, session, ids = imported
    workspace = handlers.workspace(session)
    scores = load_scores(workspace, MODEL, handlers.predictors.get(workspace, MODEL).version)
    view, legend, status, payload, queue, box, save_status, session, _ = handlers.next_image(
        MODEL, "uncertainty", session)
    most = max(ids, key=scores.get)
    assert session.sample_id == most and most in status and "4 unlabelled" in queue
    assert box.label == session.image_name and session.image_name in save_status and "not saved" in save_status
    data = json.loads(payload)
    assert {"seg", "doubt", "pred", "mask"} <= set(data) and data["token"] == session.token
    *_, session, _ = handlers.next_image(MODEL, "order", session)
    assert session.sample_id == (ids[0] if ids[0] != most else ids[1])
    rows = handlers.samples_table(MODEL, "uncertainty", session)
    assert [r[0] for r in rows] == sorted(ids, key=lambda i: -scores[i])
    assert all(r[1] == "unlabelled" for r in rows)


def test_grabcut_request_answers_by_token_only(imported):
    handlers, session, ids = imported
    *_, session, _ = handlers.next_image(MODEL, "order", session)
    rows, cols = np.nonzero(draw_scene(int(session.source_name[6]), 96, 128)[1] == CAR)
    box = [int(cols.min()) - 3, int(rows.min()) - 3, int(cols.max()) + 4, int(rows.max()) + 4]
    answer = handlers.grabcut_request({"token": session.token, "box": box})
    from segdemo.ui import rle_decode

    region = rle_decode(*answer["mask"], session.image.shape[:2]).astype(bool)
    assert np.array_equal(region, tools.grabcut(session.image, tuple(box)))
    assert "no longer open" in handlers.grabcut_request({"token": "guessed", "box": box})["error"]
    assert "four numbers" in handlers.grabcut_request({"token": session.token, "box": [1, 2]})["error"]
    assert "too small" in handlers.grabcut_request({"token": session.token, "box": [5, 5, 5, 40]})["error"]
    assert handlers.grabcut_request("not a dict") == {"error": "bad request"}


def test_import_with_nothing_chosen_and_an_empty_queue(tmp_path):
    import app

    handlers = app.SegdemoApp(tmp_path / "ws", finetune_seconds=2)
    session = handlers.new_session()
    assert "Choose or drop" in handlers.import_files([], MODEL, session, progress=lambda *a, **k: None)[0]
    outputs = handlers.next_image(MODEL, "uncertainty", session)
    assert "No images queued" in outputs[4] and outputs[7].image is None


def test_import_can_be_cancelled_and_keeps_what_was_imported(tmp_path, capsys):
    import app

    handlers = app.SegdemoApp(tmp_path / "ws", finetune_seconds=2)
    paths = []
    for seed in range(4):
        paths.append(str(tmp_path / f"scene-{seed}.png"))
        Image.fromarray(draw_scene(seed, 48, 64)[0]).save(paths[-1])
    session = handlers.new_session()

    def press_cancel_after_the_first_image(value, desc=""):
        if value > 0:
            handlers.cancel_import(session)

    status, session = handlers.import_files(paths, "", session, progress=press_cancel_after_the_first_image)
    assert "Imported 1 image; cancelled" in status
    assert len(handlers.workspace(session).list_unlabelled()) == 1
    assert "Cancelling the import" in capsys.readouterr().out
    handlers.cancel_import(session)  # nothing running: only a notice, and the next import is not cancelled
    assert "No import is running" in capsys.readouterr().out
    status, session = handlers.import_files(paths, "", session, progress=lambda *a, **k: None)
    assert "Imported 3 images; skipped 1" in status and "cancelled" not in status
    assert len(handlers.workspace(session).list_unlabelled()) == 4
