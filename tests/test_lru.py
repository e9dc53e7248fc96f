"""The one bounded in-memory cache (segdemo.lru) and the process-wide memos that use it."""

import pytest

from segdemo.learning import top_training
from segdemo.lru import LruCache


def test_the_least_recently_used_entry_goes_first():
    cache = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3 and len(cache) == 2
    assert cache.pop("a") == 1 and cache.pop("a") is None and cache.get("missing") is None
    with pytest.raises(ValueError):
        LruCache(0)


def test_process_wide_memos_are_bounded():
    from segdemo.promotion import evidence

    assert isinstance(top_training._TRUNK_DIGESTS, LruCache) and isinstance(evidence._SAMPLE_MATRICES, LruCache)
