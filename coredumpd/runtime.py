"""Building the running pieces from the configuration: the pipeline, and the daemon's
crash handler for hand-offs."""

from __future__ import annotations

import logging
import os
import threading

from coredumpd.catalog import Catalog
from coredumpd.config import Config, Storage, load_config_for
from coredumpd.context import ContextError, CrashContext
from coredumpd.pipeline import Pipeline
from coredumpd.policy import SignatureLimit
from coredumpd.policy_history import build_policy
from coredumpd.spool import Spool
from procfs.errors import ProcfsError
from procfs.handle import ProcessHandle
from socket_server.wire import Handoff

log = logging.getLogger(__name__)


def pipeline_for(config: Config, *, spool: bool = False) -> Pipeline:
    """The pipeline ``config`` describes; with ``spool`` (a long-lived daemon's), big cores
    land in a file written ahead (:mod:`coredumpd.spool`), and the first spool is started."""
    state = config.state_directory
    state.mkdir(parents=True, exist_ok=True, mode=0o755)
    limits = config.storage_limits()
    catalog = Catalog.open(config.catalog_path)
    signatures = None
    if config.full_cores_per_signature is not None:
        signatures = SignatureLimit(config.full_cores_per_signature)
        try:
            signatures.seed(catalog.full_core_counts())
        except Exception as err:  # noqa: BLE001 - optional: only the history is lost
            log.warning("failed to count cores per signature, ignoring: %s", err)
    storage = config.storage != Storage.NONE
    written_ahead = None
    if spool and storage and limits.compress and config.spool_size > 0:
        written_ahead = Spool(config.core_directory, config.spool_size,
                              max_use=limits.max_use, keep_free=limits.keep_free)
    pipeline = Pipeline(state_dir=state, limits=limits, catalog=catalog, storage=storage,
                        journal_size_max=config.journal_size_max, signatures=signatures,
                        policy=build_policy(config, catalog), spool=written_ahead)
    if written_ahead is not None:
        written_ahead.refill()  # (the pipeline made the core directory)
    return pipeline


def open_pipeline(*, state_dir: str | None = None, config_path: str | None = None) -> Pipeline:
    return pipeline_for(load_config_for(config_path, state_dir))


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


def open_crash_handle(context: CrashContext, pidfd: int | None) -> ProcessHandle | None:
    """The crashed process's handle: from the kernel's pidfd (``%F``, taken over) when it
    names ``context.pid``, else by pid (safe while the dump holds the task). None, with a
    note on the context, when neither works."""
    if pidfd is not None:
        try:
            handle = ProcessHandle.from_pidfd(pidfd, take=True)
        except (ProcfsError, OSError) as err:
            log.warning("pidfd of pid %s unusable: %s; using /proc", context.pid, err)
            os.close(pidfd)
        else:
            if handle.pid == context.pid:
                return handle
            log.warning("pidfd names pid %s, not %s; using /proc", handle.pid, context.pid)
            handle.close()
    try:
        return ProcessHandle.from_pid(context.pid)
    except (ProcfsError, OSError) as err:
        log.warning("cannot open pid %s: %s; continuing without /proc", context.pid, err)
        context.notes.append(f"no /proc access: {err}")
        return None


def _handed_context(handoff: Handoff) -> CrashContext | None:
    """The context of a hand-off; from the kernel's ``argv`` (the helper's fast path) it is
    parsed here, and arguments the helper would have refused drop the core the same way."""
    if handoff.argv is None:
        return CrashContext.from_json(handoff.context_json or "")
    try:
        return CrashContext.from_kernel(handoff.argv)
    except ContextError as err:
        log.error("%s; the core is dropped", err)
        return None


def handle_handoff(pipeline: Pipeline, handoff: Handoff) -> None:
    """Run one handed-off crash (the daemon's worker). Owns and closes the hand-off's fds.

    A pipe helper hands off before reading /proc (extra ``metadata: pending``): the task is
    held until we drain the stream, so the metadata is read here, through its pidfd."""
    core = FdOwner(handoff.core_fd)
    handle = None
    try:
        context = _handed_context(handoff)
        if context is None:
            if handoff.pidfd is not None:
                os.close(handoff.pidfd)
            return
        context.door = handoff.extras.get("door", context.door or "pipe")
        pending = handoff.extras.get("metadata") == "pending"
        if pending:
            handle = open_crash_handle(context, handoff.pidfd)
        elif handoff.pidfd is not None:
            try:
                handle = ProcessHandle.from_pidfd(handoff.pidfd, take=True)
            except (ProcfsError, OSError) as err:
                log.warning("pidfd of pid %s unusable: %s", context.pid, err)
                os.close(handoff.pidfd)
        result = pipeline.process(context, handoff.core_fd, handle, metadata_done=not pending,
                                  release=core.close)
        log.info("recorded pid %s (%s)", context.pid, result.summary())
    finally:
        core.close()
        if handle is not None:
            handle.close()
