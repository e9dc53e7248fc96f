"""The fill-in from strokes (segdemo.learning.strokes), its server side (segdemo.web.strokes), what Save keeps of
it, and the simulated person who clicks (segdemo.clicker), on images the tests draw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segdemo import tools, ui
from segdemo.clicker import Editor, label_image, next_click
from segdemo.labels import LabelSet
from segdemo.learning.strokes import UNPAINTED, StrokeFiller, snap_to_segments
from segdemo.promotion.live import load_live
from segdemo.store import Workspace
from segdemo.web.models import offered_models
from tests.drawing import ANIMALS, draw_animal

LABELS = LabelSet(name="animals", names=ANIMALS, colors=((0, 0, 0), (230, 150, 40), (110, 70, 40)))
CAT = 1


def cold_filler(tmp_path, model: str, image: np.ndarray, **kwargs) -> StrokeFiller:
    """A filler for ``image`` in a new animals workspace: the live classifier learned nothing of its classes."""
    workspace = Workspace(tmp_path / "ws", labels=LABELS)
    live = load_live(workspace, model)
    assert live.new_head
    return StrokeFiller(live.predictor(workspace, model), image, cold=live.new_head, **kwargs)


def two_strokes(mask: np.ndarray) -> np.ndarray:
    """Two strokes of the editor's default brush: one across the middle of the drawn cat, one along the row of
    grass farthest from it."""
    painted = np.full(mask.shape, UNPAINTED, np.uint8)
    rows, cols = np.nonzero(mask == CAT)
    cy, cx = int(rows.mean()), int(cols.mean())
    half = (cols.max() - cols.min()) // 4
    for x in range(cx - half, cx + half + 1, 2):
        painted[tools.disc(*mask.shape, x, cy) & (mask == CAT)] = CAT
    grass_row = max(range(8, mask.shape[0] - 8), key=lambda y: abs(y - cy))
    for x in range(8, mask.shape[1] - 8, 2):
        painted[tools.disc(*mask.shape, x, grass_row) & (mask == 0)] = 0
    return painted


@pytest.mark.parametrize("model", offered_models())
def test_two_strokes_fill_in_a_drawn_object(model, tmp_path):
    """For every family the picker offers: a stroke on the cat and one on the grass, and the rest fills in (each
    superpixel whole, as in the editor)."""
    image, mask = draw_animal(3, CAT, 192, 256)
    filler = cold_filler(tmp_path, model, image, segments=tools.superpixels(image)).prepare()
    answer = filler.refit(1, two_strokes(mask))
    assert answer is not None and answer.serial == 1 and answer.classes == 2
    assert answer.mask.shape == mask.shape and answer.mask.dtype == np.uint8
    filled_cat, cat = answer.mask == CAT, mask == CAT
    assert filled_cat[cat].mean() > 0.95, "the fill-in covers the drawn cat"
    assert (filled_cat & cat).sum() / (filled_cat | cat).sum() > 0.7, "and little grass"


def test_a_cold_classifier_waits_for_two_classes(tmp_path):
    image, mask = draw_animal(4, CAT, 96, 128)
    filler = cold_filler(tmp_path, "fcn8s_lite0", image)
    one_class = np.where(two_strokes(mask) == CAT, CAT, UNPAINTED).astype(np.uint8)
    assert filler.refit(1, one_class) is None
    assert filler.refit(2, np.full(mask.shape, UNPAINTED, np.uint8)) is None
    assert filler.refit(3, two_strokes(mask)) is not None


def test_a_stale_answer_is_dropped(tmp_path):
    """A re-fit for a stroke older than the newest one noted answers nothing, before or during its steps."""
    image, mask = draw_animal(5, CAT, 96, 128)
    filler = cold_filler(tmp_path, "fcn8s_lite0", image).prepare()
    painted = two_strokes(mask)
    filler.note(3)
    assert filler.refit(2, painted) is None
    steps = []
    original = filler._fit

    def fit_then_newer_stroke(points, targets, serial):
        steps.append(serial)
        filler.note(serial + 1)  # the person paints again while this re-fit runs
        original(points, targets, serial)

    filler._fit = fit_then_newer_stroke
    assert filler.refit(4, painted) is None and steps == [4]
    filler._fit = original
    assert filler.refit(5, painted).serial == 5


def test_fill_in_request_answers_a_stroke_and_drops_a_stale_one(tmp_path):
    from segdemo.web.handlers import SegdemoApp

    app = SegdemoApp(tmp_path / "ws", learn_after_save=False)
    Workspace(tmp_path / "pets", labels=LABELS)
    session = app.new_session()
    session.workspace = str(tmp_path / "pets")
    image, mask = draw_animal(6, CAT, 96, 128)
    session.image, session.model, session.token = image, "fcn8s_lite0", "tok"
    assert app.open_for_strokes(session, tools.superpixels(image)) == {"fill": True, "cold": True}
    painted = list(ui.rle_encode(two_strokes(mask)))
    answer = app.fill_in_request({"token": "tok", "serial": 2, "painted": painted})
    assert answer["serial"] == 2 and answer["classes"] == 2 and answer["seconds"] >= 0
    filled = ui.rle_decode(*answer["mask"], mask.shape)
    assert (filled[mask == CAT] == CAT).mean() > 0.8
    assert app.fill_in_request({"token": "tok", "serial": 1, "painted": painted}) == {"serial": 1, "stale": True}
    session.token = "tok2"
    app.open_for_strokes(session)
    one_class = list(ui.rle_encode(np.where(mask == CAT, CAT, UNPAINTED).astype(np.uint8)))
    waiting = app.fill_in_request({"token": "tok2", "serial": 1, "painted": one_class})
    assert "paint a stroke of each class" in waiting["waiting"] and "mask" not in waiting
    assert app.fill_in_request({"token": "nope", "serial": 1, "painted": painted})["error"]
    assert app.fill_in_request({"token": "tok", "serial": 9, "painted": ["!!", "??"]})["error"]


def test_the_editor_keeps_painted_pixels_over_the_fill_in(tmp_path):
    """What the simulated editor shows: painted pixels as painted, even where the fill-in says otherwise."""
    image, mask = draw_animal(7, CAT, 96, 128)
    filler = cold_filler(tmp_path, "fcn8s_lite0", image).prepare()
    editor = Editor(np.zeros_like(mask), filler, LABELS.ignore_index)
    assert editor.waiting and (editor.show(np.full(mask.shape, UNPAINTED, np.uint8), 0) == 255).all()
    painted = two_strokes(mask)
    painted[0, 0] = 2  # a dog pixel on the grass: the fill-in will not agree
    shown = editor.show(painted, 1)
    assert not editor.waiting and len(editor.refits) == 1
    hand = painted != UNPAINTED
    assert np.array_equal(shown[hand], painted[hand])


def test_snap_to_segments_gives_each_superpixel_one_class():
    segments = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    probability = np.zeros((2, 2, 4))
    probability[0] = [[0.9, 0.2, 0.4, 0.4], [0.9, 0.2, 0.4, 0.4]]
    probability[1] = 1 - probability[0]
    assert snap_to_segments(probability, segments).tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]]


def test_next_click_is_inside_the_largest_wrong_region():
    truth = np.zeros((40, 60), np.uint8)
    truth[5:35, 30:58] = 1  # a large cat region the display misses
    truth[2:6, 2:6] = 2  # a small dog region it misses too
    shown = np.zeros_like(truth)
    x, y, cls = next_click(shown, truth)
    assert cls == 1 and 30 <= x < 58 and 5 <= y < 35
    assert abs(x - 43.5) <= 1.5 and abs(y - 19.5) <= 1.5, "the interior: farthest from the region's border"
    assert next_click(shown, truth, skip=frozenset({1}))[2] == 2
    assert next_click(truth, truth) is None


def test_label_image_clicks_until_95_percent_right_with_the_fill_in(tmp_path):
    image, mask = draw_animal(8, CAT, 96, 128)
    segments = tools.superpixels(image)
    filler = cold_filler(tmp_path, "fcn8s_lite0", image, segments=segments).prepare()
    result = label_image(Editor(np.zeros_like(mask), filler, 255), mask, segments, ignore_index=255)
    assert result["reached"] and result["accuracy"] >= 0.95 and 2 <= result["clicks"] <= 6


def test_superpixels_under_a_click_match_the_brush_disc():
    segments = np.arange(16 * 16).reshape(16, 16) // 4  # strips of four pixels
    touched = tools.superpixels_under(segments, 8.5, 8.5, size=4)
    covered = tools.disc(16, 16, 8.5, 8.5, 4)
    assert set(touched.tolist()) == set(np.unique(segments[covered]).tolist())
    assert covered.sum() == 13 and covered[8, 8]  # pixel centres within 2 px of (8.5, 8.5)


def test_save_keeps_painted_pixels_apart_from_the_filled_in(tmp_path):
    workspace = Workspace(tmp_path / "ws", labels=LABELS)
    image, mask = draw_animal(9, CAT, 48, 64)
    prediction = np.zeros_like(mask)
    painted = np.zeros(mask.shape, bool)
    painted[:10] = True
    value = ui.decode_painter_value(ui.painter_value(mask, "t", painted))
    assert np.array_equal(value.painted, painted)
    meta = workspace.save_sample(image, prediction, value.mask, model="fcn8s_lite0", weights_version="v0",
                                 source_name="cat.png", painted=value.painted)
    assert meta.painted_pixels == int(painted.sum())
    assert meta.filled_pixels == int(((mask != prediction) & ~painted).sum())
    assert np.array_equal(workspace.load_painted(meta.id), painted)
    assert workspace.sample_meta(meta.id).painted_pixels == meta.painted_pixels
    again = workspace.save_sample(image, prediction, mask, model="fcn8s_lite0", weights_version="v0",
                                  source_name="cat.png", sample_id=meta.id)
    assert again.painted_pixels == -1 and workspace.load_painted(meta.id) is None
    assert ui.decode_painter_value(ui.painter_value(mask, "t")).painted is None
    with pytest.raises(ValueError, match="painted"):
        ui.decode_painter_value(ui.painter_value(mask, "t").replace('"mask"', '"hand": [1, 2], "mask"'))


def test_strokes_release_the_live_classes_they_paint_over():
    """The KL term to a held live prediction: a live class the person keeps painting over loses its hold (trust);
    a live classifier that is not held (one the workspace trained itself) has no term."""
    from segdemo.inference import Predictor
    from segdemo.learning.strokes import StrokeSettings

    image, _ = draw_animal(12, CAT, 64, 96)
    predictor = Predictor.from_weights("fcn8s_lite0")
    filler = StrokeFiller(predictor, image, cold=False, hold=True, settings=StrokeSettings(keep=0.3, trust_prior=10))
    live_called = torch.tensor([0] * 40 + [1] * 40)  # the live model's class at 80 painted pixels
    filler._live_points = torch.nn.functional.one_hot(live_called, 11).T.float() * 5
    filler._live_grid = torch.nn.functional.one_hot(torch.tensor([0, 1, 2]), 11).T.float() * 5
    painted = torch.tensor([0] * 40 + [2] * 30 + [1] * 10)  # class 1's pixels mostly painted as class 2
    trust = filler.trust(painted)
    assert trust[0] == 1.0 and trust[1] == pytest.approx((10 + 10) / (40 + 10)) and trust[5] == 1.0
    assert torch.allclose(filler._held(painted), 0.3 * torch.tensor([1.0, 0.4, 1.0]))
    filler.hold = False
    assert filler._held(painted) is None
