"""Which images a simulated labelling session works through, in which order."""

import pytest

from segdemo.picking import evenly_spaced
from segdemo.session import pick_ids, session_images

IDS = [f"img{i:03d}" for i in range(50)]


def test_sequential_takes_consecutive_ids_from_start():
    assert session_images(IDS, 3, "sequential", start=10) == ["img010", "img011", "img012"]
    with pytest.raises(ValueError):
        session_images(IDS, 3, "sequential", start=48)


def test_spread_and_uncertainty_share_the_evenly_spaced_pool():
    assert session_images(IDS, 5, "spread") == session_images(IDS, 5, "uncertainty") == evenly_spaced(IDS, 5)


def test_shuffled_is_a_seeded_permutation_of_the_pool():
    pool = evenly_spaced(IDS, 10)
    first, again, other = (session_images(IDS, 10, "shuffled", start=s) for s in (0, 0, 1))
    assert sorted(first) == pool and first == again and first != pool and other != first


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="order"):
        session_images(IDS, 5, "alphabetical")
    with pytest.raises(ValueError):
        session_images(IDS, 51, "spread")


def test_pick_ids_spread_and_consecutive():
    ids = [f"{i:03d}" for i in range(20)]
    assert pick_ids(ids, 3, "consecutive", start=5) == ["005", "006", "007"]
    assert pick_ids(ids, 3, "spread") == evenly_spaced(ids, 3)
    with pytest.raises(ValueError):
        pick_ids(ids, 3, "consecutive", start=18)


def test_evenly_spaced_follows_the_rule():
    ids = [f"{i:03d}" for i in range(101)]
    assert evenly_spaced(ids, 5) == ["000", "025", "050", "075", "100"]
    assert evenly_spaced(ids, 1) == ["000"]
    with pytest.raises(ValueError):
        evenly_spaced(ids[:3], 4)
