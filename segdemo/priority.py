"""Foreground work a person waits for (Segment, Next) and background work that gives way to it.

Two cores serve both the person and the background threads (the fast learner, queue scoring): those threads
call :func:`wait_for_foreground` between their steps and sleep while any :func:`foreground` block runs; inside
:func:`pausable` a background network also waits before each layer's forward and backward, so a click costs what
it costs on an idle machine plus at most one background layer.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import torch

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


@contextmanager
def pausable(*modules: torch.nn.Module) -> Iterator[None]:
    """While inside, every leaf layer of ``modules`` waits for foreground work to end before its forward, and
    before the backward through its output: a background step gives way within one layer, not one whole step.
    Only for modules that background threads alone run (a foreground thread would wait for itself)."""

    def before_backward(grad: torch.Tensor) -> None:
        wait_for_foreground()

    def before_forward(module: torch.nn.Module, args: tuple) -> None:
        wait_for_foreground()

    def after_forward(module: torch.nn.Module, args: tuple, output) -> None:
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(before_backward)

    handles = []
    for module in modules:
        for layer in module.modules():
            if not any(True for _ in layer.children()):
                handles += [layer.register_forward_pre_hook(before_forward), layer.register_forward_hook(after_forward)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
