"""Run the app under uvicorn with a draining shutdown.

SIGTERM/SIGINT (Ctrl+C): ``/ready`` turns 503, the listening socket closes, in-flight
requests (streams included) get up to ``drain_timeout_s`` to finish, the engine
shuts down, and the process exits 0 with one line saying so (uvicorn would re-raise the signal
on the way out: a KeyboardInterrupt traceback for Ctrl+C). A dead engine or a failed load exits non-zero.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

import uvicorn

from server.app import create_app, services_of
from server.config import Settings
from server.lifecycle import Lifecycle, Phase
from server.logs import configure_logging

log = logging.getLogger("foresight.runner")


class DrainingServer(uvicorn.Server):
    """uvicorn.Server that marks the app as draining as soon as a stop signal arrives."""

    lifecycle: Lifecycle | None = None
    stopped_by: int | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.lifecycle is not None:
            if self.lifecycle.phase is not Phase.DRAINING:
                log.info("signal %d: draining — no new work; in-flight requests may finish", sig)
            self.lifecycle.set(Phase.DRAINING, f"signal {sig}")
        self.stopped_by = sig
        super().handle_exit(sig, frame)
        # uvicorn re-raises captured signals on the way out; a drained stop is a clean exit (0)
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured[:] = [s for s in captured if s not in (signal.SIGTERM, signal.SIGINT)]


def serve(settings: Settings) -> int:
    """Serve until stopped; return the process exit code."""
    configure_logging(settings.log_level, settings.log_format)
    exit_code = {"code": 0}
    server: DrainingServer | None = None

    def request_exit(code: int) -> None:
        exit_code["code"] = code
        if server is not None:
            server.should_exit = True

    app = create_app(settings, request_exit=request_exit)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.drain_timeout_s) or None,
        lifespan="on",
        access_log=False,
        log_config=None,  # keep our handlers (JSON lines by default)
    )
    server = DrainingServer(config)
    server.lifecycle = services_of(app).lifecycle
    log.info("serving %s on http://%s:%d", settings.model, settings.host, settings.port)
    try:
        server.run()
    except KeyboardInterrupt:  # interrupted outside uvicorn's own handling (before it installed it)
        log.warning("interrupted: stopped without draining")
        return 130
    if server.force_exit:  # a second Ctrl+C while draining: uvicorn stopped without waiting
        log.warning("interrupted again while draining: stopped without waiting for in-flight requests")
        return 130
    if server.stopped_by is not None:
        log.info("stopped by %s", signal.Signals(server.stopped_by).name)
    return exit_code["code"]
