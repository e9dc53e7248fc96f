"""segdemo.promotion.judge: the one judge and the one publish every learner calls."""

from __future__ import annotations

import numpy as np

from segdemo.labels import LabelSet
from segdemo.promotion.guard import MAX_DRIFT
from segdemo.promotion.judge import judge, publish_version
from segdemo.promotion.live import load_live
from segdemo.store import SHIPPED, Workspace
from segdemo.weights import save_weights
from tests.drawing import ANIMALS

PETS = LabelSet(name="animals", names=ANIMALS, colors=((0, 0, 0), (230, 150, 40), (110, 70, 40)))


def better(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Live and candidate matrices over k classes: the candidate clearly better (pixel error 20 % → 5 %)."""
    live, candidate = np.eye(k) * 80.0, np.eye(k) * 95.0
    live[0, 1:] += 20.0 / (k - 1)
    candidate[0, 1:] += 5.0 / (k - 1)
    return live, candidate


def test_publish_writes_the_next_version_and_makes_it_live_only_when_promoted(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    live = load_live(workspace, "fcn8s_lite0")
    written = []

    def write(path, version):
        save_weights(live.model, path, model_name="fcn8s_lite0", labels=workspace.labels, input_scale=1.0,
                     version=version,
                     meta={"parent": SHIPPED})
        written.append((path.name, version))

    before, after = better(11)
    kept = judge(workspace, "fcn8s_lite0", live, after, before, images=4)
    assert not kept.promote
    assert publish_version(workspace, "fcn8s_lite0", kept, write) == "v1"
    assert workspace.live_version("fcn8s_lite0") == SHIPPED
    promoted = judge(workspace, "fcn8s_lite0", live, before, after, images=4)
    assert promoted.promote
    assert publish_version(workspace, "fcn8s_lite0", promoted, write) == "v2"
    assert workspace.live_version("fcn8s_lite0") == "v2"
    assert written == [("v1.safetensors", "v1"), ("v2.safetensors", "v2")]


def test_the_drift_limit_applies_only_where_the_live_classifier_came_with_the_workspace_classes(tmp_path):
    """The shipped CamVid classifier in a CamVid workspace is held to the drift limit; a classifier trained for
    another label set is not (its guesses on unlabelled images are not knowledge to keep)."""
    camvid = Workspace(tmp_path / "camvid")
    before, after = better(11)
    drift = MAX_DRIFT + 0.1
    assert not judge(camvid, "fcn8s_lite0", load_live(camvid, "fcn8s_lite0"), before, after, images=4,
                     drift=drift).promote
    pets = Workspace(tmp_path / "pets", labels=PETS)
    live = load_live(pets, "fcn8s_lite0")
    live.new_head = False  # as if the workspace had trained it
    before, after = better(3)
    assert judge(pets, "fcn8s_lite0", live, before, after, images=4, drift=drift).promote
