"""The server's life: loading → ready → draining, or dead when the engine fails."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Phase(enum.StrEnum):
    """Where the server is in its life."""

    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"
    DEAD = "dead"
    FAILED = "failed"


@dataclass
class Lifecycle:
    """Mutable state shared by the app's routes (one per app, not global)."""

    phase: Phase = Phase.LOADING
    detail: str = ""

    def set(self, phase: Phase, detail: str = "") -> None:
        # a dead engine stays dead
        if self.phase in (Phase.DEAD, Phase.FAILED) and phase not in (Phase.DEAD, Phase.FAILED):
            return
        # a stop signal during loading or warm-up: the server never turns (back) to ready
        if self.phase is Phase.DRAINING and phase in (Phase.LOADING, Phase.READY):
            return
        self.phase, self.detail = phase, detail
