"""The app's handlers without a browser: segment, save, editor encoding, dataset, versions, fine-tune, bad inputs."""

from __future__ import annotations

import importlib
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from segdemo import ui
from segdemo.labels import CAMVID11
from segdemo.learning.finetune import active_job
from tests.drawing import draw_scene

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # app.py lives at the repository root
    sys.path.insert(0, str(ROOT))
MODEL = "fcn8s_lite0"  # the default, offered model
pytestmark = pytest.mark.filterwarnings("ignore:.*:UserWarning")  # gr.Warning outside a request warns


def write_png(path: Path, image: np.ndarray, mode: str | None = None) -> str:
    pil = Image.fromarray(image)
    pil = pil.convert(mode) if mode else pil
    pil.save(path)
    return str(path)


@pytest.fixture(scope="module")
def app_module():
    import app

    return app


@pytest.fixture
def seg_app(app_module, tmp_path):
    """The app without the fast learner, so the versions these tests count are the ones they make."""
    return app_module.SegdemoApp(tmp_path / "ws", finetune_seconds=2, learn_after_save=False)


@pytest.fixture
def segmented(seg_app, tmp_path):
    """A session that has segmented one drawn image with the fastest model."""
    session = seg_app.new_session()
    path = write_png(tmp_path / "street.png", draw_scene(0, 64, 96)[0])
    overlay, legend, status, session = seg_app.segment(path, MODEL, session)
    return session, overlay, legend, status


def test_import_has_no_side_effects(tmp_path):
    code = ("import os, sys; sys.path.insert(0, sys.argv[1]); import app; "
            "assert not os.path.exists('workspace'), 'workspace created'; "
            "assert app._DEMO is None; "
            "assert not any(n.startswith('segdemo-export') for n in os.listdir('.'))")
    subprocess.run([sys.executable, "-c", code, str(ROOT)], cwd=tmp_path, check=True, timeout=120)
    assert list(tmp_path.iterdir()) == []


def test_build_demo_registers_only_predict_next_and_save_as_api(app_module, tmp_path):
    demo = app_module.build_demo(tmp_path / "ws", finetune_seconds=3)
    public = [fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"]
    assert sorted(public) == ["next", "predict", "save"]
    assert (tmp_path / "ws" / "labels.json").is_file()
    assert demo.segdemo_app.finetune_seconds == 3
    ids = {block.elem_id for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    assert {"model-select", "segment-btn", "editor", "save-btn", "finetune-btn", "cancel-btn",
            "finetune-result", "import-cancel-btn"} <= ids
    assert "cancel_import" in {fn.name for fn in demo.fns.values()}


def test_model_catalogue_offers_something(app_module):
    choices = app_module.model_catalogue()
    assert choices
    for choice in choices:
        assert choice.name in choice.label
        assert ("untrained" in choice.label) != choice.trained
    assert app_module.default_model(choices) in [c.name for c in choices]


def load(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_segment_returns_overlay_first(segmented):
    session, overlay, legend, status = segmented
    overlay = load(overlay)
    assert overlay.shape == (64, 96, 3) and overlay.dtype == np.uint8
    assert session.prediction.shape == (64, 96) and session.confidence.shape == (64, 96)
    assert MODEL in status and session.version in status
    assert "Sky" in legend and "%" in legend
    assert session.token


def test_segment_accepts_uploads_as_filedata_and_any_mode(seg_app, tmp_path):
    session = seg_app.new_session()
    image = draw_scene(1, 64, 96)[0]
    for mode, suffix in (("L", ".png"), ("RGBA", ".png"), ("RGB", ".jpg"), ("RGB", ".bmp"), ("RGB", ".tiff"),
                         ("RGB", ".webp"), ("P", ".png")):
        path = write_png(tmp_path / f"in-{mode}{suffix}", image, mode)
        overlay, *_ = seg_app.segment({"path": path, "orig_name": f"photo{suffix}"}, MODEL, session)
        assert load(overlay).shape == (64, 96, 3)
        assert session.source_name == f"photo{suffix}"


@pytest.mark.parametrize("content, needle", [
    (b"this is not an image", "not an image"),
    (None, "truncated"),
    ("tiny", "16x16"),
])
def test_bad_inputs_give_clear_errors_and_write_nothing(seg_app, tmp_path, content, needle):
    path = tmp_path / "bad.png"
    if content is None:  # a truncated PNG
        buffer = io.BytesIO()
        Image.fromarray(draw_scene(2, 64, 96)[0]).save(buffer, format="PNG")
        path.write_bytes(buffer.getvalue()[:300])
    elif content == "tiny":
        Image.new("RGB", (1, 1)).save(path)
    else:
        path.write_bytes(content)
    session = seg_app.new_session()
    with pytest.raises(gr.Error) as info:
        seg_app.segment(str(path), MODEL, session)
    assert needle in str(info.value.message)
    assert session.image is None
    assert seg_app.workspace().list_samples() == []


def test_huge_image_is_refused(seg_app, tmp_path, monkeypatch):
    import segdemo.fileio as fileio

    monkeypatch.setattr(fileio, "MAX_IMAGE_PIXELS", 1000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = write_png(tmp_path / "big.png", draw_scene(3, 64, 96)[0])
    with pytest.raises(gr.Error) as info:
        seg_app.segment(path, MODEL, seg_app.new_session())
    assert "too large" in str(info.value.message)


def test_segment_without_image_or_model(app_module, seg_app, tmp_path):
    with pytest.raises(gr.Error):
        seg_app.segment(None, MODEL, seg_app.new_session())
    with pytest.raises(gr.Error):
        seg_app.segment({"path": None}, MODEL, seg_app.new_session())
    path = write_png(tmp_path / "ok.png", draw_scene(9, 64, 96)[0])
    from segdemo.models import list_models

    not_offered = [m for m in list_models() if m not in app_module.offered_models()][:1]
    for model in ["", "no_such_model", *not_offered]:  # the API only serves the models the dropdown offers
        with pytest.raises(gr.Error):
            seg_app.segment(path, model, seg_app.new_session())


def test_rle_round_trip_and_damage():
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 11, (37, 53)).astype(np.uint8)
    mask[5:9] = 255
    values, lengths = ui.rle_encode(mask)
    assert np.array_equal(ui.rle_decode(values, lengths, mask.shape), mask)
    with pytest.raises(ValueError):
        ui.rle_decode(values, lengths, (37, 52))
    with pytest.raises(ValueError):
        ui.rle_decode("***", lengths, mask.shape)
    decoded = ui.decode_painter_value(ui.painter_value(mask, "tok"))
    assert decoded.token == "tok" and np.array_equal(decoded.mask, mask)
    for bad in ("", "not json", json.dumps({"token": "x"}), json.dumps({"image": "data:", "mask": [], "w": 1})):
        with pytest.raises(ValueError):
            ui.decode_painter_value(bad)


def test_painter_value_larger_than_any_image_is_refused_before_decoding():
    huge = json.dumps({"token": "", "w": 100_000, "h": 100_000, "mask": ["AA==", "AOH1BQ=="]})
    with pytest.raises(ValueError, match="larger than any image"):
        ui.decode_painter_value(huge)


def test_painter_payload_carries_exact_masks(segmented, seg_app):
    session = segmented[0]
    data = json.loads(seg_app.editor_payload(session))
    assert (data["w"], data["h"]) == (96, 64) and data["token"] == session.token
    assert data["image"].startswith("data:image/")
    assert np.array_equal(ui.rle_decode(*data["pred"], (64, 96)), session.prediction)
    assert data["names"] == list(CAMVID11.names) and len(data["colors"]) == 11
    assert seg_app.editor_payload(seg_app.new_session()) == ""


def test_save_stores_exactly_the_painted_mask(segmented, seg_app):
    session = segmented[0]
    painted = session.prediction.copy()
    painted[10:20, 30:50] = 4
    painted[0:3, 0:5] = 255
    status, session = seg_app.save(ui.painter_value(painted, session.token), session)
    assert "Saved" in status and session.sample_id in status
    workspace = seg_app.workspace()
    image, prediction, corrected, meta = workspace.load_sample(session.sample_id)
    assert np.array_equal(corrected, painted)
    assert np.array_equal(prediction, session.prediction)
    assert meta.changed_pixels == int((painted != session.prediction).sum())
    assert meta.model == MODEL and meta.weights_version == session.version
    assert ("held-out" if meta.split == "heldout" else "train") in status
    view, legend = seg_app.refresh_view(session)  # the Result now shows the corrected mask
    assert np.array_equal(load(view), ui.render_view(session.image, painted, None, CAMVID11, alpha=session.opacity))
    assert "corrected" in legend
    # Saving again updates the same sample.
    painted[30:40, 0:10] = 5
    status, session = seg_app.save(ui.painter_value(painted, session.token), session)
    assert len(workspace.list_samples()) == 1
    assert np.array_equal(workspace.load_sample(meta.id)[2], painted)


def test_save_refuses_bad_requests_without_crashing(segmented, seg_app):
    session = segmented[0]
    status, _ = seg_app.save("", seg_app.new_session())
    assert "segment an image first" in status
    status, _ = seg_app.save("garbage", session)
    assert "⚠" in status
    status, _ = seg_app.save(ui.painter_value(session.prediction, "another-token"), session)
    assert "different image" in status
    status, _ = seg_app.save(ui.painter_value(np.zeros((5, 5), np.uint8), session.token), session)
    assert "nothing was saved" in status
    status, _ = seg_app.save(ui.painter_value(np.full_like(session.prediction, 255), session.token), session)
    assert "void" in status
    status, _ = seg_app.save(ui.painter_value(np.full_like(session.prediction, 42), session.token), session)
    assert "Not saved" in status
    assert seg_app.workspace().list_samples() == []


def test_rerender_views(segmented, seg_app):
    session = segmented[0]
    overlay = load(seg_app.rerender(0.0, "Overlay", session)[0])
    edges = ui.class_edges(session.prediction)
    assert np.array_equal(overlay[~edges], session.image[~edges]) and (overlay[edges] == 255).all()
    heat = load(seg_app.rerender(0.5, "Confidence", session)[0])
    assert heat.shape == session.image.shape and not np.array_equal(heat, overlay)
    colors = load(seg_app.rerender(0.5, "Mask", session)[0])
    assert np.array_equal(colors, CAMVID11.palette()[session.prediction])


def test_dataset_list_open_delete_export(seg_app, tmp_path):
    session = seg_app.new_session()
    ids = []
    for seed in range(2):
        path = write_png(tmp_path / f"img{seed}.png", draw_scene(10 + seed, 64, 96)[0])
        session = seg_app.segment(path, MODEL, session)[3]
        painted = session.prediction.copy()
        painted[:4, :4] = 2
        status, session = seg_app.save(ui.painter_value(painted, session.token), session)
        ids.append(session.sample_id)
    items, summary, session = seg_app.dataset_view(session)
    assert len(items) == 2 and "2 saved samples" in summary and session.gallery_ids == ids
    assert ids[0] in items[0][1]

    message, session = seg_app.select_sample(1, session)
    assert session.selected == ids[1] and ids[1] in message
    overlay, legend, status, session, tabs = seg_app.open_sample(session)
    assert session.sample_id == ids[1] and ids[1] in status
    reopened = json.loads(seg_app.editor_payload(session))
    corrected = ui.rle_decode(*reopened["mask"], (64, 96))
    assert (corrected[:4, :4] == 2).all()
    corrected[20:30, 20:30] = 6  # edit again and save → same id updated
    status, session = seg_app.save(ui.painter_value(corrected, session.token), session)
    assert ids[1] in status and len(seg_app.workspace().list_samples()) == 2
    assert np.array_equal(seg_app.workspace().load_sample(ids[1])[2], corrected)

    zip_path = seg_app.export("layout", session).value["path"]
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
    assert {f"images/{ids[0]}.png", f"masks/{ids[1]}.png", "labels.json", "splits/all.txt"} <= names

    message, session = seg_app.delete_selected(session)
    assert "Deleted" in message
    assert [s.id for s in seg_app.workspace().list_samples()] == [ids[0]]
    message, session = seg_app.delete_selected(session)
    assert "Select a sample" in message


def test_versions_and_rollback_change_the_next_segment(seg_app, tmp_path):
    """A promoted version is used by the next Segment and named in its status; rolling back switches again."""
    from segdemo.promotion.live import load_live
    from segdemo.weights import save_weights

    workspace = seg_app.workspace()
    live = load_live(workspace, MODEL)
    save_weights(live.model, workspace.checkpoint_dir(MODEL) / "v1.safetensors", model_name=MODEL,
                 labels=workspace.labels, input_scale=live.model.input_scale, version="v1",
                 meta={"parent": "shipped", "created": time.time(),
                       "metrics": {"heldout_before": {"miou": 0.1}, "heldout": {"miou": 0.2}}})
    rows, dropdown = seg_app.versions_view(MODEL, seg_app.new_session())
    assert [r[0] for r in rows] == ["shipped", "v1"] and rows[0][5] == "● live"
    assert rows[1][1] == "fine-tuned from shipped"
    assert "v1" in [value for _, value in dropdown.choices]

    path = write_png(tmp_path / "a.png", draw_scene(4, 64, 96)[0])
    session = seg_app.new_session()
    seg_app.segment(path, MODEL, session)
    assert session.version.startswith("shipped") or session.version == "untrained"
    assert "v1" in seg_app.make_live(MODEL, "v1", session)
    _, _, status, session = seg_app.segment(path, MODEL, session)
    assert session.version == "workspace v1" and "workspace v1" in status
    assert seg_app.versions_view(MODEL, session)[0][1][5] == "● live"
    seg_app.make_live(MODEL, "shipped", session)
    _, _, status, session = seg_app.segment(path, MODEL, session)
    assert session.version.startswith("shipped") or session.version == "untrained"
    assert "⚠" in seg_app.make_live(MODEL, "v9", session)
    summary, result = seg_app.result_view(MODEL, session)
    assert "v1" in summary and result[0][:3] == ["mIoU (held-out)", "0.100", "0.200"]
    save_weights(live.model, workspace.checkpoint_dir(MODEL) / "v2.safetensors", model_name=MODEL,
                 labels=workspace.labels, input_scale=live.model.input_scale, version="v2",
                 meta={"parent": "v1", "learner": "fast", "created": time.time()})
    assert seg_app.versions_view(MODEL, session)[0][2][1] == "learned after a save from v1"


def test_per_save_versions_fold_under_the_live_one_and_each_press_shows_its_figures(seg_app):
    from segdemo.promotion.live import load_live
    from segdemo.weights import save_weights

    workspace = seg_app.workspace()
    live = load_live(workspace, MODEL)

    def version(name, **meta):
        save_weights(live.model, workspace.checkpoint_dir(MODEL) / f"{name}.safetensors", model_name=MODEL,
                     labels=workspace.labels, input_scale=live.model.input_scale, version=name,
                     meta={"created": time.time(), **meta})

    def guard(promote, before, after, images, recent=0):
        return {"promote": promote, "verdict": "better" if promote else "worse", "images": images, "recent": recent,
                "miou_before": before, "miou_after": after, "error_before": 0.2, "error_after": 0.1}

    for index in range(1, 6):
        version(f"v{index}", parent="shipped", learner="fast", train_ids=["a"] * index,
                guard=guard(index % 2 == 1, 0.5, 0.5 + index / 100, 2))
    version("v6", parent="v5", job="top", train_ids=["a"] * 8, guard=guard(True, 0.55, 0.71, 7, recent=4))
    version("v7", parent="v6", learner="fast", train_ids=["a"] * 9, guard=guard(True, 0.71, 0.72, 3))
    workspace.set_live(MODEL, "v7")
    rows, dropdown = seg_app.versions_view(MODEL, seg_app.new_session())
    assert [r[0] for r in rows] == ["shipped", "v6", "v7"], "per-save versions fold under the live one"
    assert rows[1][1] == "fine-tuned (top) from v5" and rows[1][3] == "0.710 (3 held-out + 4 latest saves)"
    assert "6 versions learned after saves (4 went live)" in rows[2][1] and rows[2][5] == "● live"
    assert {"v1", "v3", "v5"} <= {value for _, value in dropdown.choices}, "what went live can be rolled back to"
    summary, _ = seg_app.result_view(MODEL, seg_app.new_session())
    row = "| v6 | top | 8 | 3 held-out + 4 latest saves | 0.550 → 0.710 | 20.0 → 10.0 % | better (went live) |"
    assert row in summary
    assert "Live now: **v7**, learned after a save from 9 samples" in summary


def test_finetune_start_busy_cancel(seg_app, tmp_path):
    session = seg_app.new_session()
    progress, timer = seg_app.start_finetune(MODEL, 2, session)
    assert "Save at least 3" in progress and active_job(seg_app.workspace()) is None
    for seed in range(4):
        path = write_png(tmp_path / f"f{seed}.png", draw_scene(20 + seed, 64, 96)[0])
        session = seg_app.segment(path, MODEL, session)[3]
        seg_app.save(ui.painter_value(session.prediction, session.token), session)
    assert {s.split for s in seg_app.workspace().list_samples()} == {"train", "heldout"}

    progress, timer = seg_app.start_finetune(MODEL, 0, session)  # 0 on the slider: the automatic budget
    try:
        assert "Running" in progress and timer.active
        assert seg_app.current_job(session).settings.seconds is None
        again, _ = seg_app.start_finetune(MODEL, 30, session)  # second press: warns, starts nothing new
        assert "Running" in again
        outputs = seg_app.poll(MODEL, session)
        assert "Running" in outputs[0] or "Finished" in outputs[0]
    finally:
        seg_app.cancel_finetune(session)
    job = seg_app.current_job(session)
    job.join(60)
    assert job.state.status in ("cancelled", "done")
    outputs = seg_app.poll(MODEL, session)
    assert outputs[-1].active is False
    trend = seg_app.trend_frame(session)
    assert list(trend["sample"]) == [1, 2, 3, 4]


def test_finetune_runs_to_a_result(seg_app, tmp_path):
    session = seg_app.new_session()
    for seed in range(3):
        path = write_png(tmp_path / f"g{seed}.png", draw_scene(30 + seed, 64, 96)[0])
        session = seg_app.segment(path, MODEL, session)[3]
        painted = session.prediction.copy()
        painted[32:] = 3
        seg_app.save(ui.painter_value(painted, session.token), session)
    seg_app.start_finetune(MODEL, 1, session)
    job = seg_app.current_job(session)
    job.join(120)
    assert job.state.status == "done", job.state.message
    progress, losses, loss_note, summary, table, versions, dropdown, trend, trend_note, timer = seg_app.poll(
        MODEL, session)
    assert "Finished" in progress and not timer.active
    assert "mIoU" in summary and table.visible
    assert table.value["data"][0][0] == "mIoU (held-out)" if isinstance(table.value, dict) else True
    assert [r[0] for r in versions][-1] == "v1"
    assert losses.visible and loss_note == ""
    assert trend.visible and trend_note == "" and trend.y_lim[0] == 0


def test_cli_helpers(app_module):
    assert app_module.parse_auth("ann:secret") == [("ann", "secret")]
    assert app_module.parse_auth("ann:secret, bob:pw:with:colons") == [("ann", "secret"), ("bob", "pw:with:colons")]
    with pytest.raises(ValueError):
        app_module.parse_auth("ann:a,ann:b")
    assert app_module.parse_auth("") is None
    with pytest.raises(ValueError):
        app_module.parse_auth("nocolon")
    assert app_module.is_loopback("127.0.0.1") and not app_module.is_loopback("0.0.0.0")


def test_examples_are_drawn_once(app_module, tmp_path):
    paths = app_module.ensure_examples(tmp_path / "ex")
    assert len(paths) == 3
    mtimes = [Path(p).stat().st_mtime_ns for p in paths]
    assert app_module.ensure_examples(tmp_path / "ex") == paths
    assert [Path(p).stat().st_mtime_ns for p in paths] == mtimes
    assert Image.open(paths[0]).size == (480, 360)
    assert all(Path(p).name.startswith("drawing-") for p in paths), "the examples say they are drawings"


def test_reimport_is_cheap_and_lazy():
    module = importlib.import_module("app")
    assert module._DEMO is None or isinstance(module._DEMO, gr.Blocks)


def test_new_workspace_with_custom_classes(app_module, tmp_path):
    seg_app = app_module.SegdemoApp(tmp_path / "ws", finetune_seconds=2)
    session = seg_app.new_session()
    outputs = seg_app.create_workspace("Pot holes!", "road #804080\npothole, 255, 0, 0\nbackground", session)
    message, info, table, dropdown, legend, editor, overlay, image, status, save_status, session = outputs
    created = tmp_path / "ws-pot-holes"
    assert session.workspace == str(created) and "Created" in message
    assert (created / "labels.json").is_file() and "pothole" in legend and editor == "" and save_status == ""
    assert image.value is None
    assert all(name in table for name in ("road", "pothole", "background", "#ff0000"))
    assert [row[2] for row in seg_app.labels_view(session)] == ["road", "pothole", "background", "void (ignored)"]
    assert str(created) in [value for _, value in dropdown.choices]

    path = write_png(tmp_path / "x.png", draw_scene(40, 64, 96)[0])
    _, legend, status, session = seg_app.segment(path, MODEL, session)
    assert session.prediction.max() < 3 and "new head" in session.version or session.version == "untrained"
    painted = session.prediction.copy()
    painted[:10] = 1
    status, session = seg_app.save(ui.painter_value(painted, session.token), session)
    assert "Saved" in status and (created / "masks" / f"{session.sample_id}.png").is_file()
    assert seg_app.workspace().list_samples() == []  # the start-up workspace is untouched

    outputs = seg_app.switch_workspace(str(tmp_path / "ws"), session)
    assert outputs[-1].workspace == str(tmp_path / "ws") and outputs[-1].image is None
    assert outputs[0].startswith("Switched")
    outputs = seg_app.switch_workspace("/etc", session)
    assert outputs[-1].workspace == str(tmp_path / "ws")
    assert "⚠" in seg_app.create_workspace("pot-holes", "road #00ff00", session)[0]  # other classes, same name
    assert "⚠" in seg_app.create_workspace("other", "a\na", session)[0]


def test_label_set_is_numbered_like_the_keys_and_every_class_has_a_key(seg_app):
    assert [ui.class_key(i) for i in (0, 8, 9, 10, 19, 20)] == ["1", "9", "0", "⇧1", "⇧0", ""]
    table = ui.labels_table_html(CAMVID11)
    assert "<td>1</td><td><kbd>1</kbd></td>" in table and "<td>11</td><td><kbd>⇧1</kbd></td>" in table
    rows = seg_app.labels_view(seg_app.new_session())
    assert [r[0] for r in rows[:11]] == [str(i) for i in range(1, 12)] and all(r[1] for r in rows[:11])
    assert rows[10][2] == "Bicyclist" and rows[10][4] == "10"  # the value the class has in mask files
    legend = ui.legend_html(CAMVID11)
    assert legend.count("<kbd></kbd>") == 0
    assert ui.plural(1, "sample") == "1 sample" and ui.plural(2, "sample") == "2 samples"


def test_outlines_keep_the_palette_and_mark_every_class_border():
    mask = np.zeros((6, 8), np.uint8)
    mask[:, 4:] = 3
    edges = ui.class_edges(mask)
    assert edges[:, 3].all() and edges.sum() == 6
    image = np.full((6, 8, 3), 100, np.uint8)
    view = ui.render_view(image, mask, None, CAMVID11, view="overlay", alpha=1.0)
    assert (view[edges] == 255).all() and np.array_equal(view[~edges], CAMVID11.palette()[mask][~edges])
    assert np.array_equal(ui.render_view(image, mask, None, CAMVID11, view="mask"), CAMVID11.palette()[mask])


def save_drawn(seg_app, session, tmp_path, seeds) -> None:
    for seed in seeds:
        path = write_png(tmp_path / f"s{seed}.png", draw_scene(seed, 48, 64)[0])
        session = seg_app.segment(path, MODEL, session)[3]
        painted = session.prediction.copy()
        painted[:8] = 0
        assert "Saved" in seg_app.save(ui.painter_value(painted, session.token), session)[0]


def test_finetune_says_beforehand_what_the_guard_can_decide(seg_app, tmp_path):
    from segdemo.promotion.guard import MIN_IMAGES

    session = seg_app.new_session()
    intro, button = seg_app.readiness(session)
    assert "0 train samples and 0 held-out samples" in intro and "cannot start" in intro
    assert button.interactive is False
    save_drawn(seg_app, session, tmp_path, range(100, 101))
    intro, button = seg_app.readiness(session)
    assert "1 train sample and 0 held-out samples" in intro and button.interactive is False
    save_drawn(seg_app, session, tmp_path, range(101, 103))
    workspace = seg_app.workspace()
    heldout = len(workspace.split_ids("heldout"))
    assert 0 < heldout < MIN_IMAGES
    intro, button = seg_app.readiness(session)
    assert "too few to decide" in intro and button.interactive and "little evidence" in button.value
    assert "trains the model's **top**" in intro, "it says what a press will train"
    seeds = iter(range(103, 140))
    while len(workspace.split_ids("heldout")) < MIN_IMAGES:
        save_drawn(seg_app, session, tmp_path, [next(seeds)])
    intro, button = seg_app.readiness(session)
    assert "too few" not in intro and button.interactive and button.value == "Fine-tune"
    assert "latest save" in intro, "it says the latest saves are evidence too"


def test_empty_charts_say_why_and_one_point_is_drawn(seg_app, tmp_path):
    session = seg_app.new_session()
    outputs = seg_app.finetune_panel(MODEL, session)
    loss, loss_note, trend, trend_note = outputs[3], outputs[4], outputs[9], outputs[10]
    assert not loss.visible and "loss" in loss_note
    assert not trend.visible and "Each saved sample adds a point" in trend_note
    save_drawn(seg_app, session, tmp_path, [150])
    trend, trend_note = seg_app.trend_chart(session)
    assert trend.visible and trend_note == ""
    value = trend.value["data"] if isinstance(trend.value, dict) else trend.value
    assert len(value) == 1
    low, high = trend.x_lim
    assert low < 1 < high and trend.y_lim[0] == 0 and trend.y_lim[1] >= 1


def test_save_moves_on_only_through_a_queue_and_quietly_without_one(seg_app, tmp_path, capsys):
    session = seg_app.new_session()
    save_drawn(seg_app, session, tmp_path, [160])
    capsys.readouterr()
    outputs = seg_app.save_then_next(True, MODEL, "order", "✓ Saved it", session)
    assert all(isinstance(o, type(gr.skip())) for i, o in enumerate(outputs) if i != 7)
    assert capsys.readouterr().out == "", "no pop-up without a queue"
    queue, checkbox = seg_app.queue_controls(MODEL, "order", session)
    assert "No images queued" in queue and checkbox.visible is False
    _, next_status, *_ = seg_app.next_image(MODEL, "order", session)[3:]
    assert capsys.readouterr().out == ""

    paths = [write_png(tmp_path / f"queued{i}.png", draw_scene(161 + i, 48, 64)[0]) for i in range(2)]
    seg_app.import_files(paths, MODEL, session, progress=lambda *a, **k: None)
    queue, checkbox = seg_app.queue_controls(MODEL, "order", session)
    assert "2 unlabelled" in queue and checkbox.visible is True
    # The uploaded image was saved before the import: a late "move on" leaves it in the editor.
    outputs = seg_app.save_then_next(True, MODEL, "order", "✓ Saved it", session)
    assert all(isinstance(o, type(gr.skip())) for i, o in enumerate(outputs) if i != 7)

    session = seg_app.next_image(MODEL, "order", session)[7]
    assert session.source_name == "queued0.png" and session.from_queue
    seg_app.save(ui.painter_value(session.prediction, session.token), session)
    outputs = seg_app.save_then_next(False, MODEL, "order", "✓ Saved it", session)
    assert all(isinstance(o, type(gr.skip())) for i, o in enumerate(outputs) if i != 7), "unticked: stays"
    outputs = seg_app.save_then_next(True, MODEL, "order", "✓ Saved it", session)
    session = outputs[7]
    assert session.source_name == "queued1.png" and session.sample_id
    assert outputs[6].startswith("✓ Saved it") and "Editing **queued1.png**" in outputs[6]
    assert isinstance(outputs[8], type(gr.skip())), "moving on never switches tabs"
    assert capsys.readouterr().out == ""


def test_segment_after_next_acts_on_the_queued_image(seg_app, tmp_path):
    """Next puts the queued image in the Image box; Segment then re-segments that sample, and Save labels it."""
    session = seg_app.new_session()
    save_drawn(seg_app, session, tmp_path, [170])  # an uploaded photo was open before
    path = write_png(tmp_path / "queued.png", draw_scene(171, 48, 64)[0])
    seg_app.import_files([path], MODEL, session, progress=lambda *a, **k: None)
    outputs = seg_app.next_image(MODEL, "order", session)
    view, box, save_status, session = outputs[0], outputs[5], outputs[6], outputs[7]
    assert view.label == "View of queued.png"
    queued_id, shown = session.sample_id, box.value["path"] if isinstance(box.value, dict) else box.value
    assert box.label == "queued.png" and "Editing **queued.png**" in save_status
    assert np.array_equal(load(shown), session.image), "the Image box shows the editor's image"
    assert "queued.png" in seg_app.image_changed(str(tmp_path / "s170.png"), session)
    assert isinstance(seg_app.image_changed(shown, session), type(gr.skip()))

    _, _, status, session = seg_app.segment(shown, MODEL, session)
    assert session.sample_id == queued_id and "queued.png" in status
    assert "queued.png" in seg_app.editor_payload(session)
    status, session = seg_app.save(ui.painter_value(session.prediction, session.token), session)
    assert queued_id in status and "queued.png" in status
    workspace = seg_app.workspace()
    assert len(workspace.list_samples()) == 2 and workspace.list_unlabelled() == []
