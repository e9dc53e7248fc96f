"""Weights as data: round trips, sha256 refusal, label-set changes, and every shipped weight file."""

import json
import os

import numpy as np
import pytest
import torch

from tests.drawing import shared_dataset
from segdemo.bench import count_params
from segdemo.data import BASE_SIZE
from segdemo.fileio import sha256_file
from segdemo.inference import Predictor
from segdemo.labels import CAMVID11
from segdemo.models import build_model, list_models, shipped_weights
from segdemo.ui import street_scene
from segdemo.weights import WeightsEntry, WeightsError, save_weights, shipped_entries

SHIPPED = sorted(shipped_entries())


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model("fcn8s_compact").eval()
    entry = save_weights(model, tmp_path / "w.safetensors", model_name="fcn8s_compact", labels=CAMVID11,
                         input_scale=1.0, version="v7", meta={"note": "test"})
    return model, entry


def test_round_trip_restores_every_tensor(saved):
    model, entry = saved
    again = build_model("fcn8s_compact", weights=entry.file)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    loaded = WeightsEntry.from_json(entry.json_path)
    assert loaded.version == "v7" and loaded.meta["note"] == "test" and loaded.labels == CAMVID11
    assert loaded.sha256 == sha256_file(entry.file)


def test_training_scale_travels_with_the_weights(tmp_path):
    model = build_model("fcn8s_compact")
    entry = save_weights(model, tmp_path / "w.safetensors", model_name="fcn8s_compact", labels=CAMVID11,
                         input_scale=1.0, base_size=256)
    assert WeightsEntry.from_json(entry.json_path).base_size == 256
    assert Predictor.from_weights("fcn8s_compact", entry.file).model_scale(512, 700) == pytest.approx(0.5)
    data = json.loads(entry.json_path.read_text())
    del data["input"]["base_size"]
    entry.json_path.write_text(json.dumps(data))
    assert WeightsEntry.from_json(entry.json_path).base_size == BASE_SIZE


def test_sha256_mismatch_is_refused(saved):
    _, entry = saved
    data = bytearray(entry.file.read_bytes())
    data[-1] ^= 0xFF
    entry.file.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        build_model("fcn8s_compact", weights=entry.file)


def test_truncated_file_is_refused_even_with_matching_hash(saved):
    _, entry = saved
    entry.file.write_bytes(entry.file.read_bytes()[:1000])
    data = json.loads(entry.json_path.read_text())
    data["sha256"] = sha256_file(entry.file)
    entry.json_path.write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        build_model("fcn8s_compact", weights=entry.file)


def test_weights_for_another_model_are_refused(saved):
    with pytest.raises(WeightsError, match="not 'unet_compact'"):
        build_model("unet_compact", weights=saved[1])


def test_other_num_classes_keeps_the_trunk_and_resets_the_head(saved):
    model, entry = saved
    adapted = build_model("fcn8s_compact", num_classes=3, weights=entry)
    assert adapted.num_classes == 3
    assert torch.equal(adapted.encoder.layer1[0].conv1.weight, model.encoder.layer1[0].conv1.weight)


def test_missing_entry_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match="no weights entry"):
        build_model("fcn8s_compact", weights=tmp_path / "nothing.safetensors")


def test_no_pickle_files_are_shipped():
    from segdemo.weights import SHIPPED_WEIGHTS_DIR

    assert not [p for p in SHIPPED_WEIGHTS_DIR.iterdir() if p.suffix in (".pt", ".pth", ".pkl", ".ckpt", ".bin")]


@pytest.mark.skipif(not SHIPPED, reason="no shipped weights yet")
@pytest.mark.parametrize("name", SHIPPED)
class TestShippedWeights:
    def test_loads_and_matches_its_metadata(self, name):
        entry = shipped_weights(name)
        assert name in list_models()
        assert entry.file.suffix == ".safetensors" and entry.sha256 == sha256_file(entry.file)
        assert entry.file.stat().st_size < 20_000_000
        model = build_model(name, weights="default")
        assert count_params(model) == entry.meta["params"]
        assert model.input_scale == entry.input_scale
        for key in ("gflops", "recipe", "metrics"):
            assert key in entry.meta
        assert {"command", "epochs", "seconds", "machine"} <= set(entry.meta["recipe"])
        assert set(entry.meta["metrics"]["val"]["per_class_iou"]) == set(entry.labels.names)

    @pytest.mark.parametrize("size", [(360, 480), (720, 960)])
    def test_sane_output_on_drawn_street_scenes(self, name, size):
        predictor = Predictor.from_weights(name)
        road = predictor.labels.names.index("Road")
        for seed in (1, 2):
            mask = predictor.predict(street_scene(seed, size)).mask
            assert mask.shape == size and mask.max() < predictor.labels.num_classes
            # The drawn road fills the bottom of the picture, sky and buildings the top.
            band = size[0] // 9
            assert np.bincount(mask[-band:].ravel(), minlength=11).argmax() == road
            assert np.bincount(mask[:band].ravel(), minlength=11).argmax() != road

    def test_sane_on_real_camvid_frames(self, name):
        from segdemo.data import SegmentationDataset
        from segdemo.learning.train import evaluate

        root = shared_dataset("camvid")
        ids = (root / "splits" / "val.txt").read_text().split()[:4]
        metrics = evaluate(Predictor.from_weights(name), SegmentationDataset(root, ids))
        assert metrics["pixel_acc"] > 0.7 and metrics["miou"] > 0.3


@pytest.mark.rescore
@pytest.mark.skipif(os.environ.get("SEGDEMO_RESCORE") != "1", reason="set SEGDEMO_RESCORE=1 to re-score val")
@pytest.mark.parametrize("name", SHIPPED)
def test_val_numbers_reproduce(name):
    from segdemo.data import SegmentationDataset
    from segdemo.learning.train import evaluate

    root = shared_dataset("camvid")
    metrics = evaluate(Predictor.from_weights(name), SegmentationDataset.from_split(root, "val"))
    assert metrics["miou"] == pytest.approx(shipped_weights(name).meta["metrics"]["val"]["miou"], abs=2e-3)


def test_the_picker_offers_one_model_per_family_and_no_beaten_one():
    from segdemo.models import get_spec
    from segdemo.web.models import offered_models

    offered = offered_models()
    assert sorted(get_spec(n).family for n in offered) == ["fcn", "segnet", "unet"]
    beaten = [n for n in SHIPPED if shipped_weights(n).meta.get("offered") is False]
    assert beaten and not set(beaten) & set(offered)
    assert all(shipped_weights(n).meta.get("offered_reason") for n in beaten), "a beaten model says why"


def test_the_picker_shows_each_workspaces_own_figures(tmp_path):
    from segdemo.labels import LabelSet
    from segdemo.store import Workspace
    from segdemo.web.models import model_catalogue

    streets = model_catalogue(workspace=Workspace(tmp_path / "streets"))
    assert all("camvid11 val mIoU" in c.label for c in streets)
    pets = Workspace(tmp_path / "pets", labels=LabelSet(name="pets", names=("background", "cat", "dog"),
                                                      colors=((0, 0, 0), (200, 100, 0), (0, 100, 200))))
    labels = [c.label for c in model_catalogue(workspace=pets)]
    assert all("val mIoU" not in label and "not trained here yet" in label for label in labels)
    name = labels and model_catalogue(workspace=pets)[0].name
    (pets.checkpoint_dir(name)).mkdir(parents=True, exist_ok=True)
    from segdemo.promotion.live import load_live
    from segdemo.weights import save_weights

    live = load_live(pets, name)
    save_weights(live.model, pets.checkpoint_dir(name) / "v1.safetensors", model_name=name, labels=pets.labels,
                 input_scale=live.model.input_scale, version="v1",
                 meta={"parent": "shipped", "guard": {"images": 6, "miou_after": 0.8123, "promote": True}})
    pets.set_live(name, "v1")
    assert "here: v1, mIoU 0.812 on 6 images" in model_catalogue(workspace=pets)[0].label


@pytest.mark.parametrize("name", [n for n in SHIPPED if "encoder" in shipped_weights(n).meta])
def test_decoders_carry_the_shared_encoder_they_were_trained_on(name):
    entry, source = shipped_weights(name), shipped_weights(shipped_weights(name).meta["encoder"]["model"])
    assert entry.meta["encoder"]["sha256"] == source.sha256 and entry.meta["encoder"]["frozen"]
    encoder = build_model(name, weights="default").encoder.state_dict()
    for key, value in build_model(source.model, weights="default").encoder.state_dict().items():
        assert torch.equal(encoder[key], value), key
    assert {"miou", "held_out", "caveat"} <= set(entry.meta["selection"])
    assert {"cores", "seconds", "epochs", "command"} <= set(entry.meta["recipe"])


@pytest.mark.skipif("fcn8s_lite0" not in SHIPPED, reason="no shipped fcn8s_lite0")
def test_a_file_from_before_a_layout_change_loads_under_todays_names():
    from safetensors.torch import load_file

    entry = shipped_weights("fcn8s_lite0")
    on_disk = load_file(entry.file)
    assert "head.score8.weight" in on_disk, "the shipped file keeps the names it was written with"
    state = build_model("fcn8s_lite0", weights=entry).state_dict()
    assert set(state) == {("decoder." + k if k.startswith("head.") else k) for k in on_disk}
    assert torch.equal(state["decoder.head.score8.weight"], on_disk["head.score8.weight"])
    assert sha256_file(entry.file) == entry.sha256


@pytest.mark.skipif("fcn8s_lite0" not in SHIPPED, reason="no shipped fcn8s_lite0")
def test_a_partial_version_written_under_the_old_names_still_loads(tmp_path):
    from safetensors.torch import save_file

    from segdemo.weights import save_partial_weights

    shipped = shipped_weights("fcn8s_lite0")
    model = build_model("fcn8s_lite0", weights=shipped)
    with torch.no_grad():
        model.decoder.head.score32.bias.add_(1.0)
    today = save_partial_weights(model, [model.decoder], tmp_path / "v1.safetensors", base=shipped, shipped=True,
                                 model_name="fcn8s_lite0", labels=shipped.labels, version="v1")
    old_file = tmp_path / "v0.safetensors"
    save_file({f"head.{k}": v.contiguous() for k, v in model.decoder.head.state_dict().items()}, old_file)
    before = WeightsEntry(**{**today.__dict__, "file": old_file, "sha256": sha256_file(old_file)})
    for entry in (today, before):
        loaded = build_model("fcn8s_lite0", weights=entry).state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
