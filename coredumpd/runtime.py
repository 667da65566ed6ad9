"""Building the running pieces from the configuration: the pipeline, and the daemon's
crash handler for hand-offs."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from coredumpd.catalog import Catalog
from coredumpd.config import Config, Storage, load_config
from coredumpd.context import CrashContext
from coredumpd.pipeline import Pipeline
from coredumpd.storage import StorageLimits
from procfs.errors import ProcfsError
from procfs.handle import ProcessHandle
from socket_server.wire import Handoff

log = logging.getLogger(__name__)
CATALOG = "catalog.sqlite"


def load(config_path: str | Path | None = None, state_dir: str | Path | None = None) -> Config:
    config = load_config(config_path)
    if state_dir is not None:
        import dataclasses

        config = dataclasses.replace(config, state_directory=Path(state_dir))
    return config


def pipeline_for(config: Config) -> Pipeline:
    state = config.state_directory
    state.mkdir(parents=True, exist_ok=True, mode=0o755)
    limits = StorageLimits(process_size_max=config.process_size_max,
                           external_size_max=config.external_size_max,
                           compress=config.compress, keep_free=config.keep_free,
                           max_use=config.max_use)
    return Pipeline(state_dir=state, limits=limits, catalog=Catalog.open(state / CATALOG),
                    storage=config.storage != Storage.NONE,
                    journal_size_max=config.journal_size_max)


def open_pipeline(*, state_dir: str | None = None, config_path: str | None = None) -> Pipeline:
    return pipeline_for(load(config_path, state_dir))


class FdOwner:
    """Closes an fd exactly once, whoever asks first (release early, or clean up at the end)."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            fd, self.fd = self.fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def handle_handoff(pipeline: Pipeline, handoff: Handoff) -> None:
    """Run one handed-off crash (the daemon's worker). Owns and closes the hand-off's fds."""
    core = FdOwner(handoff.core_fd)
    handle = None
    try:
        context = CrashContext.from_json(handoff.context_json)
        context.door = handoff.extras.get("door", context.door or "pipe")
        if handoff.pidfd is not None:
            try:
                handle = ProcessHandle.from_pidfd(handoff.pidfd, take=True)
            except (ProcfsError, OSError) as err:
                log.warning("pidfd of pid %s unusable: %s", context.pid, err)
                os.close(handoff.pidfd)
        result = pipeline.process(context, handoff.core_fd, handle, metadata_done=True,
                                  release=core.close)
        log.info("recorded pid %s (core %s)", context.pid,
                 result.stored.state if result.stored else "not stored")
    finally:
        core.close()
        if handle is not None:
            handle.close()
