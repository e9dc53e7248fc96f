"""Foreground work a person waits for (Segment, Next) and background work that gives way to it.

Two cores serve both the person and the background threads (the fast learner, queue scoring): those threads
call :func:`wait_for_foreground` between their steps and sleep while any :func:`foreground` block runs, so a
click costs what it costs on an idle machine plus at most one background step.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_count = 0
_idle = threading.Condition()


@contextmanager
def foreground() -> Iterator[None]:
    """Mark work a person is waiting for; background steps pause until every such block has ended."""
    global _count
    with _idle:
        _count += 1
    try:
        yield
    finally:
        with _idle:
            _count -= 1
            _idle.notify_all()


def wait_for_foreground(limit: float = 30.0) -> None:
    """Return once no foreground work runs, or after ``limit`` seconds (so a stuck click cannot starve us)."""
    with _idle:
        _idle.wait_for(lambda: _count == 0, timeout=limit)
