"""Fixtures for the browser tests: the app served in-process on a free port, and headless Debian Chromium."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path("/tmp/shots")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def serve(tmp_path):
    """serve(finetune_seconds=...) → (url, demo, workspace path); every demo started is closed afterwards."""
    import app

    started = []

    def start(finetune_seconds: float = 5, **kwargs):
        workspace = tmp_path / f"ws{len(started)}"
        demo = app.build_demo(workspace, finetune_seconds=finetune_seconds, **kwargs)
        port = free_port()
        demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
        started.append(demo)
        return f"http://127.0.0.1:{port}/", demo, workspace

    yield start
    for demo in started:
        demo.close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield page
    context.close()
