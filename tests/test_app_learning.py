"""The fast learner seen from the app: Save starts it, the line under Save says what it did, and the next
segmentation uses what it learned."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

from segdemo import ui
from segdemo.learning.learner import LearnerSettings
from tests.drawing import ROAD, draw_scene

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
MODEL = "fcn8s_lite0"
pytestmark = pytest.mark.filterwarnings("ignore:.*:UserWarning")


@pytest.fixture
def learning_app(tmp_path):
    import app

    # A counted number of steps (the default is 3 s): the same update however busy the machine is.
    return app.SegdemoApp(tmp_path / "ws", finetune_seconds=2,
                          learner_settings=LearnerSettings(seconds=120, max_steps=60))


def test_save_teaches_the_model_and_says_so(learning_app, tmp_path):
    path = tmp_path / "street.png"
    Image.fromarray(draw_scene(3, 96, 128)[0]).save(path)
    session = learning_app.new_session()
    session = learning_app.segment(str(path), MODEL, session)[3]
    first = session.prediction.copy()
    painted = first.copy()
    painted[48:] = ROAD
    assert (painted != first).mean() > 0.05, "the correction changes something the model got wrong"
    saved, session = learning_app.save(ui.painter_value(painted, session.token), session)
    assert saved.startswith("✓ Saved")
    line = learning_app.learning_status(session)
    assert "learned from 1 sample" in line and "v1 live" in line, line
    workspace = learning_app.workspace(session)
    assert workspace.live_version(MODEL) == "v1"
    session = learning_app.segment(str(path), MODEL, session)[3]
    assert session.version == "workspace v1"
    again = session.prediction
    assert (again[48:] == ROAD).mean() > (first[48:] == ROAD).mean(), "the next prediction learned the save"


def test_learning_can_be_switched_off_for_counting_tests(tmp_path):
    import app

    quiet = app.SegdemoApp(tmp_path / "ws", learn_after_save=False)
    path = tmp_path / "street.png"
    Image.fromarray(draw_scene(4, 64, 96)[0]).save(path)
    session = quiet.segment(str(path), MODEL, quiet.new_session())[3]
    quiet.save(ui.painter_value(session.prediction, session.token), session)
    assert quiet.learning_status(session) == "" and quiet.workspace(session).versions(MODEL) == []
