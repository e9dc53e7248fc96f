"""Several people on one workspace without a browser: queue claims, revisions and refused saves, names, history,
and the same through two sessions of the app's handlers."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segdemo import ui
from segdemo import claims as claims_module
from segdemo.claims import Claims
from segdemo.export import zip_bytes
from segdemo.store import LOCAL_AUTHOR, RevisionConflict, Workspace

from tests.drawing import CAR, ROAD, SKY, draw_scene

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # app.py lives at the repository root
    sys.path.insert(0, str(ROOT))
MODEL = "fcn8s_compact"
pytestmark = pytest.mark.filterwarnings("ignore:.*:UserWarning")  # gr.Warning / gr.Info outside a request warn


def queued(workspace: Workspace, count: int) -> list[str]:
    return [workspace.add_unlabelled(draw_scene(seed, 48, 64)[0], source_name=f"scene-{seed}.png").id
            for seed in range(count)]


# -- claims -------------------------------------------------------------------------------------------------------


def test_each_holder_is_handed_a_different_image_until_none_is_left(tmp_path):
    workspace = Workspace(tmp_path)
    ids = queued(workspace, 3)
    claims = Claims(workspace)
    handed = [claims.claim_next(holder, "local", ids) for holder in ("a", "b", "c")]
    assert sorted(handed) == sorted(ids)
    assert claims.claim_next("d", "local", ids) is None
    assert claims.held_by_others("a") == set(ids) - {handed[0]}
    claims.release("b")
    assert claims.claim_next("d", "local", ids) == handed[1]
    again = claims.claim_next("a", "local", ids)  # Next again: a skips its image, which others may now take
    assert again is None and handed[0] not in {c.sample_id for c in claims.all()}
    assert claims.claim_next("e", "local", ids) == handed[0]


def test_an_image_saved_after_the_queue_was_read_is_not_handed_out(tmp_path):
    """The race the load benchmark found: Next read the queue, another window saved its first image, then Next
    claimed it (9 of 40 images were labelled twice)."""
    workspace = Workspace(tmp_path)
    ids = queued(workspace, 2)
    truth = draw_scene(0, 48, 64)[1]
    workspace.save_sample(workspace.load_image(ids[0]), truth, truth, model="m", weights_version="v",
                          sample_id=ids[0])
    assert Claims(workspace).claim_next("b", "local", ids) == ids[1]


class Clock:
    """Stands in for the ``time`` module in segdemo.claims: time passes only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


def test_a_claim_ends_after_the_idle_time_unless_touched(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(claims_module, "time", clock)
    workspace = Workspace(tmp_path)
    ids = queued(workspace, 1)
    claims = Claims(workspace, idle_seconds=600)
    assert claims.claim_next("a", "local", ids) == ids[0]
    clock.now += 400
    claims.touch("a")
    clock.now += 400
    assert claims.claim_next("b", "local", ids) is None  # touched 400 s ago: still a's
    clock.now += 201
    assert claims.claim_next("b", "local", ids) == ids[0]


def test_claims_survive_the_app_and_its_author_resumes_an_orphan(tmp_path):
    workspace = Workspace(tmp_path)
    ids = queued(workspace, 2)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from segdemo.claims import Claims; "
            "from segdemo.store import Workspace; "
            "print(Claims(Workspace(sys.argv[2])).claim_next('gone-tab', 'alice', sys.argv[3:]))")
    held = subprocess.run([sys.executable, "-c", code, str(ROOT), str(tmp_path), *ids], capture_output=True,
                          text=True, check=True, timeout=120).stdout.strip()
    assert held == ids[0]
    claims = Claims(Workspace(tmp_path))  # the claim outlived the process that made it
    assert [c.sample_id for c in claims.all()] == [ids[0]] and claims.all()[0].orphan
    assert claims.claim_next("bob-tab", "bob", ids) == ids[1]  # another person does not take it
    assert claims.claim_next("alice-new-tab", "alice", ids) == ids[0]  # its author gets it back


# -- revisions ----------------------------------------------------------------------------------------------------


def corrections(seed: int = 1):
    image, truth = draw_scene(seed)
    mine = truth.copy()
    mine[:20] = SKY
    return image, np.full_like(truth, ROAD), truth, mine


def test_a_save_from_an_older_revision_is_refused_and_every_revision_is_kept(tmp_path):
    workspace = Workspace(tmp_path)
    image, prediction, theirs, mine = corrections()
    first = workspace.save_sample(image, prediction, theirs, model="m", weights_version="v1", sample_id="s",
                                  author="alice", expected_revision=0)
    assert (first.revision, first.author) == (1, "alice")
    with pytest.raises(RevisionConflict) as refused:
        workspace.save_sample(image, prediction, mine, model="m", weights_version="v1", sample_id="s", author="bob",
                              expected_revision=0)
    assert refused.value.stored.author == "alice" and "alice saved s" in str(refused.value)
    assert np.array_equal(workspace.load_masks("s")[1], theirs)  # the first correction is intact
    assert workspace.sample_meta("s").revision == 1
    second = workspace.save_sample(image, prediction, mine, model="m", weights_version="v1", sample_id="s",
                                   author="bob", expected_revision=1)
    assert (second.revision, second.split) == (2, first.split)
    assert np.array_equal(workspace.load_masks("s")[1], mine)  # the learners read the latest
    history = workspace.history("s")
    assert [(r.n, r.author) for r in history] == [(2, "bob"), (1, "alice")]
    assert np.array_equal(workspace.load_revision("s", 1), theirs)
    restored = workspace.restore_revision("s", 1, author="carol")
    assert (restored.revision, restored.author) == (3, "carol")
    assert workspace.history("s")[0].restored_from == 1
    assert np.array_equal(workspace.load_masks("s")[1], theirs)
    workspace.delete_sample("s")
    assert not (tmp_path / "revisions" / "s").exists()


def test_a_mask_saved_before_revisions_becomes_revision_one(tmp_path):
    workspace = Workspace(tmp_path)
    image, prediction, theirs, mine = corrections()
    workspace.save_sample(image, prediction, theirs, model="m", weights_version="v1", sample_id="s")
    meta_path = tmp_path / "meta" / "s.json"
    record = json.loads(meta_path.read_text())
    for key in ("revision", "author"):
        del record[key]
    meta_path.write_text(json.dumps(record))
    for path in (tmp_path / "revisions" / "s").iterdir():
        path.unlink()
    assert workspace.sample_meta("s").mask_revision == 1
    assert [(r.n, r.author) for r in workspace.history("s")] == [(1, "unknown")]
    workspace.save_sample(image, prediction, mine, model="m", weights_version="v1", sample_id="s",
                          expected_revision=1)
    assert [(r.n, r.author) for r in workspace.history("s")] == [(2, LOCAL_AUTHOR), (1, "unknown")]
    assert np.array_equal(workspace.load_revision("s", 1), theirs)


def test_exports_carry_the_author_where_the_format_has_a_place(tmp_path):
    workspace = Workspace(tmp_path)
    image, prediction, theirs, _ = corrections()
    workspace.save_sample(image, prediction, theirs, model="m", weights_version="v1", sample_id="s", author="alice")
    with zipfile.ZipFile(io.BytesIO(zip_bytes(workspace, "coco"))) as archive:
        coco = json.loads(archive.read("annotations.json"))
    assert coco["images"][0]["author"] == "alice" and coco["images"][0]["revision"] == 1
    with zipfile.ZipFile(io.BytesIO(zip_bytes(workspace, "layout"))) as archive:
        assert json.loads(archive.read("meta/s.json"))["author"] == "alice"


# -- two windows on one app ----------------------------------------------------------------------------------------


@pytest.fixture
def team(tmp_path):
    """The app's handlers with four drawn scenes imported, and two sessions (alice's and bob's windows)."""
    import app

    handlers = app.SegdemoApp(tmp_path / "ws", finetune_seconds=2, learn_after_save=False)
    paths = []
    for seed in range(4):
        paths.append(tmp_path / f"scene-{seed}.png")
        Image.fromarray(draw_scene(seed, 96, 128)[0]).save(paths[-1])
    alice, bob = handlers.new_session(), handlers.new_session()
    handlers.set_name("alice", alice)
    handlers.set_name("  bob\n", bob)
    handlers.import_files([str(p) for p in paths], MODEL, alice, progress=lambda *a, **k: None)
    handlers._scorers[str(handlers.workspace(alice).root)].join(120)
    return handlers, alice, bob


def test_two_windows_get_different_images_and_no_save_is_silently_overwritten(team):
    handlers, alice, bob = team
    alice = handlers.next_image(MODEL, "order", alice)[7]
    bob_outputs = handlers.next_image(MODEL, "order", bob)
    bob = bob_outputs[7]
    assert alice.sample_id and bob.sample_id and alice.sample_id != bob.sample_id
    assert "1 open in another window" in bob_outputs[4]
    rows = {r[0]: r for r in handlers.samples_table(MODEL, "order", bob)}
    assert rows[alice.sample_id][1] == "open in another window" and rows[bob.sample_id][1] == "unlabelled"

    theirs = alice.prediction.copy()
    theirs[:10] = CAR
    status, alice = handlers.save(ui.painter_value(theirs, alice.token), alice)
    assert "✓ Saved" in status and alice.revision == 1
    workspace = handlers.workspace(alice)
    assert workspace.sample_meta(alice.sample_id).author == "alice"
    assert {r[0]: r for r in handlers.samples_table(MODEL, "order", bob)}[alice.sample_id][4] == "alice"

    # both open alice's sample from the Dataset tab and both save it: the second is refused
    for session in (alice, bob):
        session.selected = alice.sample_id
        handlers.open_sample(session)
    first, second = theirs.copy(), theirs.copy()
    first[-10:], second[-10:] = SKY, ROAD
    status, alice = handlers.save(ui.painter_value(first, alice.token), alice)
    assert "✓ Saved" in status
    status, bob = handlers.save(ui.painter_value(second, bob.token), bob)
    assert status.startswith("⚠ Not saved") and "**alice**" in status and "revision 2" in status
    assert np.array_equal(workspace.load_masks(alice.sample_id)[1], first)
    assert all(button.visible for button in handlers.conflict_buttons(bob))

    status, bob = handlers.save_mine(ui.painter_value(second, bob.token), bob)
    assert "✓ Saved" in status and bob.revision == 3 and bob.conflict is None
    assert np.array_equal(workspace.load_masks(alice.sample_id)[1], second)
    bob.selected = alice.sample_id
    rows, dropdown = handlers.history_view(bob)
    assert [(r[0], r[1]) for r in rows] == [("3", "bob"), ("2", "alice"), ("1", "alice")]
    assert "revision 2" in handlers.restore(2, bob)
    assert np.array_equal(workspace.load_masks(alice.sample_id)[1], first)


def test_keep_theirs_and_open_theirs_resolve_a_refused_save(team):
    handlers, alice, bob = team
    alice = handlers.next_image(MODEL, "order", alice)[7]
    bob.sample_id, bob.image, bob.prediction = alice.sample_id, alice.image, alice.prediction
    bob.model, bob.version, bob.token, bob.source_name = alice.model, alice.version, "t", alice.source_name
    handlers.opened_at(bob)
    assert bob.revision == 0
    mask = alice.prediction.copy()
    mask[:5] = CAR
    handlers.save(ui.painter_value(mask, alice.token), alice)
    status, bob = handlers.save(ui.painter_value(alice.prediction, bob.token), bob)
    assert status.startswith("⚠ Not saved")
    view, legend, opened, bob, _ = handlers.open_theirs(bob)
    assert "revision 1 saved by alice" in opened and bob.revision == 1 and np.array_equal(bob.corrected, mask)
    bob.conflict = handlers.workspace(bob).sample_meta(alice.sample_id)
    status, editor, bob = handlers.keep_theirs(bob)
    assert "Kept **alice**" in status and editor == "" and bob.image is None
    assert handlers.workspace(alice).sample_meta(alice.sample_id).revision == 1


def test_a_signed_in_name_wins_and_closing_a_tab_ends_its_claim(team):
    handlers, alice, bob = team

    class Request:
        session_hash, username = "tab-1", "alice.w"

    class Anonymous:
        session_hash, username = "tab-2", None

    carol, box = handlers.identify(handlers.new_session(), "  carol ", Anonymous())
    assert handlers.author_name(carol) == "carol" and box.value == "carol", "the name this browser set last time"
    assert handlers.identify(bob, "carol", Anonymous())[0].author == "bob", "a name typed before the load wins"
    assert handlers.set_name("dave", carol)[2] == "dave"
    alice, box = handlers.identify(alice, "", Request())
    assert alice.key == "tab-1" and handlers.author_name(alice) == "alice.w" and box.interactive is False
    alice = handlers.next_image(MODEL, "order", alice)[7]
    assert handlers.held_elsewhere(handlers.workspace(bob), bob) == {alice.sample_id}
    handlers.session_closed(Request())
    assert handlers.held_elsewhere(handlers.workspace(bob), bob) == set()


def test_strokes_keep_a_claim_alive(team, monkeypatch):
    handlers, alice, bob = team
    clock = Clock()
    monkeypatch.setattr(claims_module, "time", clock)
    alice = handlers.next_image(MODEL, "order", alice)[7]
    handlers.claims(handlers.workspace(alice)).idle_seconds = 600
    clock.now += 400
    handlers.still_working(alice)  # what the fill-in request of a stroke on alice's image calls
    clock.now += 400  # 800 s after Next, 400 s after the stroke
    assert handlers.held_elsewhere(handlers.workspace(bob), bob) == {alice.sample_id}
    clock.now += 201
    assert handlers.held_elsewhere(handlers.workspace(bob), bob) == set()


def test_next_says_so_when_every_queued_image_is_open_elsewhere(team):
    handlers, alice, bob = team
    for _ in range(4):
        handlers.next_image(MODEL, "order", handlers.new_session())
    status, queue, session = (lambda o: (o[2], o[4], o[7]))(handlers.next_image(MODEL, "order", bob))
    assert "All 4 queued images are open in other windows" in status and session.sample_id is None
    assert "4 open in other windows" in queue
