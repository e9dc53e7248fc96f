"""The editor's fill-in from strokes, server side: one :class:`segdemo.learning.strokes.StrokeFiller` per image open
in an editor (by its token), prepared when the image opens, and the painter's ``fill_in`` call after each stroke.

A mixin of the app's handler class: it uses ``self.workspace(session)`` and ``self.predictors`` from
:class:`segdemo.web.state.AppState` and ``self.still_working`` from the team handlers (a stroke keeps the tab's queue
claim alive); the segment handlers call :meth:`StrokeHandlers.open_for_strokes` when they build the editor's
payload.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from segdemo import ui
from segdemo.learning.strokes import StrokeFiller, supports
from segdemo.lru import LruCache
from segdemo.priority import foreground
from segdemo.promotion.evidence import came_with_classes
from segdemo.store import StoreError
from segdemo.weights import WeightsError

OPEN_FILLERS = 8
"""Images whose fill-in stays ready (the last ones opened in an editor; each holds its encoder maps, ~25 MB)."""
COLD_HINT = "paint a stroke of each class; the rest fills in"
_PREPARE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segdemo-strokes")
"""An opened image's encoder maps are computed here, while the person looks at it."""


class StrokeHandlers:
    """The fill-in's server side (mixed into the app's handler class)."""

    def _init_strokes(self) -> None:
        self._fillers: LruCache[str, tuple[StrokeFiller, Any]] = LruCache(OPEN_FILLERS)
        """token → the image's filler and the session that opened it (whose claim a stroke keeps alive)."""

    def open_for_strokes(self, session, segments: np.ndarray | None = None) -> dict:
        """Make the fill-in ready for the session's image (its token; ``segments`` its superpixels) → what the
        painter is told: ``fill`` (whether a stroke re-fits), ``cold`` (the live classifier learned nothing: no
        prediction is shown)."""
        workspace = self.workspace(session)
        try:
            predictor = self.predictors.get(workspace, session.model)
        except (WeightsError, ValueError, StoreError):
            return {"fill": False, "cold": False}
        if not supports(predictor):
            return {"fill": False, "cold": False}
        cold = predictor.new_head
        filler = StrokeFiller(predictor, session.image, cold=cold, segments=segments,
                              hold=came_with_classes(workspace, session.model))
        self._fillers.put(session.token, (filler, session))
        _PREPARE.submit(_prepare, filler)
        return {"fill": True, "cold": cold}

    def fill_in_request(self, data: Any) -> dict:
        """The painter's call after a stroke: ``{"token", "serial", "painted": rle}`` (each painted pixel's class,
        255 elsewhere) → ``{"serial", "mask": rle, "seconds", "classes"}``; ``{"serial", "stale": true}`` when a
        newer stroke came first; ``{"serial", "waiting": hint}`` until enough classes are painted; or
        ``{"error": message}``."""
        if not isinstance(data, dict):
            return {"error": "bad request"}
        opened = self._fillers.get(str(data.get("token", "")))
        if opened is None:
            return {"error": "this image is no longer open for fill-in; open it again"}
        filler, session = opened
        self.still_working(session)
        try:
            serial = int(data.get("serial", 0))
            values, lengths = data["painted"]
            painted = ui.rle_decode(values, lengths, filler.image.shape[:2])
        except (KeyError, TypeError, ValueError) as err:
            return {"error": f"bad fill-in request: {err}"}
        with foreground():
            try:
                answer = filler.refit(serial, painted)
            except ValueError as err:
                return {"error": str(err)}
        if answer is None:
            if serial < filler.latest:
                return {"serial": serial, "stale": True}
            return {"serial": serial, "waiting": COLD_HINT if filler.cold else "paint a stroke first"}
        return {"serial": serial, "mask": list(ui.rle_encode(answer.mask)), "seconds": round(answer.seconds, 3),
                "classes": answer.classes}


def _prepare(filler: StrokeFiller) -> None:
    with foreground():
        filler.prepare()
