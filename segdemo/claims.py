"""Claims on the labelling queue: each open editor holds the queued image it was handed, so Next never hands one
image to two people.

A claim names its holder (one browser tab: Gradio's session hash), the holder's name, the app process that granted
it and when it was last touched. It ends when the holder saves, skips or closes the image, when the tab closes, or
after ``idle_seconds`` without a touch. Claims are kept in ``WORKSPACE/claims.json``, rewritten atomically under the
workspace lock, so they survive a restart of the app. A claim granted by an app process that has since died is an
*orphan*: nobody can release it, but the same person's next Next resumes it (after a restart each person gets their
image back); other people's orphans wait for the idle time like any claim.

A holder has at most one claim: taking the next image releases the one it held.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Sequence

from segdemo.fileio import atomic_write_text
from segdemo.store import StoreError, Workspace

IDLE_MINUTES = 10.0
"""How long a claim lasts without a touch (the app's ``--claim-minutes``)."""
CLAIMS_FILE = "claims.json"
_PROCESS = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
"""This app process, as written in the claims it grants: pid, then a token that tells a reused pid apart."""


@dataclass(frozen=True)
class Claim:
    """``holder`` (a tab) holds queued sample ``sample_id`` for ``author``, granted by app ``process``; ``since``
    and ``touched`` are epoch seconds."""

    sample_id: str
    holder: str
    author: str
    process: str
    since: float
    touched: float

    @property
    def orphan(self) -> bool:
        """Granted by an app process that no longer runs (so its holder can never release it)."""
        if self.process == _PROCESS:
            return False
        pid, _, _ = self.process.partition("-")
        if not pid.isdigit() or int(pid) == os.getpid():
            return True
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


class Claims:
    """The claims on one workspace's queue; every method reads and rewrites the claims file under its lock."""

    def __init__(self, workspace: Workspace, *, idle_seconds: float = IDLE_MINUTES * 60) -> None:
        self.workspace = workspace
        self.idle_seconds = float(idle_seconds)

    def _load(self) -> dict[str, Claim]:
        """Live claims by sample id (expired ones dropped); {} when there is no readable claims file."""
        try:
            data = json.loads(self.workspace.path(CLAIMS_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError, OSError):
            return {}
        claims = {}
        oldest = time.time() - self.idle_seconds
        for record in data.get("claims", []) if isinstance(data, dict) else []:
            try:
                claim = Claim(**record)
            except TypeError:
                continue
            if claim.touched >= oldest:
                claims[claim.sample_id] = claim
        return claims

    def _store(self, claims: dict[str, Claim]) -> None:
        records = [asdict(c) for c in sorted(claims.values(), key=lambda c: (c.since, c.sample_id))]
        atomic_write_text(self.workspace.path(CLAIMS_FILE), json.dumps({"claims": records}, indent=1) + "\n")

    def all(self) -> list[Claim]:
        """Every live claim, oldest first."""
        with self.workspace.locked():
            return sorted(self._load().values(), key=lambda c: (c.since, c.sample_id))

    def held_by_others(self, holder: str) -> set[str]:
        """Sample ids that holders other than ``holder`` hold."""
        return {c.sample_id for c in self.all() if c.holder != holder}

    def claim_next(self, holder: str, author: str, order: Sequence[str]) -> str | None:
        """The first of ``order`` (queued ids, best first) that nobody else holds and that has no mask yet, now held
        by ``holder`` → its id; None when there is none. An orphaned claim of ``author`` in ``order`` is resumed
        first. Whatever ``holder`` held before is released. The check and the claim happen under the workspace
        lock that saves take too, so an image saved since ``order`` was read is never handed out."""
        with self.workspace.locked():
            claims = self._load()
            mine = {i for i, c in claims.items() if c.holder == holder}
            for sample_id in mine:
                del claims[sample_id]
            queued = [i for i in order if i not in mine] or list(order)
            resumable = [i for i in queued if i in claims and claims[i].author == author and claims[i].orphan]
            free = (i for i in queued if i not in claims)
            chosen = next((i for i in [*resumable, *free] if self._unlabelled(i)), None)
            if chosen is not None:
                now = time.time()
                claims[chosen] = Claim(chosen, holder, author, _PROCESS, now, now)
            self._store(claims)
            return chosen

    def _unlabelled(self, sample_id: str) -> bool:
        """Still waiting for its first mask: ``order`` was read before the lock, and a save may have come since."""
        try:
            meta = self.workspace.sample_meta(sample_id)
        except StoreError:
            return False
        return meta is not None and not meta.labelled

    def touch(self, holder: str) -> None:
        """``holder`` is still working on its image: its claim's idle time starts again."""
        with self.workspace.locked():
            claims = self._load()
            mine = [c for c in claims.values() if c.holder == holder]
            if mine:
                now = time.time()
                for claim in mine:
                    claims[claim.sample_id] = Claim(**{**asdict(claim), "touched": now})
                self._store(claims)

    def release(self, holder: str, sample_id: str | None = None) -> None:
        """End ``holder``'s claim (only on ``sample_id`` when given)."""
        with self.workspace.locked():
            claims = self._load()
            ended = [i for i, c in claims.items() if c.holder == holder and sample_id in (None, i)]
            if ended:
                for i in ended:
                    del claims[i]
                self._store(claims)
