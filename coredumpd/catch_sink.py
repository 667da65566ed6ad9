"""Where a core written by coredumpd itself goes: the daemon through the hand-off socket when one
answers, otherwise the same pipeline run in-process into a state directory.

The core arrives as a file (a sparse temporary file, read from offset 0). For the daemon it is
copied into a pipe: when the copy is done the daemon has read all but the pipe's buffer, and
its live backtrace (taken before it drains the stream) is behind it, so the process may go.
In-process, the pipeline calls ``release`` itself once the whole core is in.
"""

from __future__ import annotations

import logging
import os
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from coredumpd.config import load_config_for
from coredumpd.context import CrashContext
from pipe_helper.handoff import hand_off
from procfs.handle import ProcessHandle

if TYPE_CHECKING:  # the pipeline (and the unwinder) load at the first capture, not at start-up
    from coredumpd.pipeline import Pipeline, PipelineResult

log = logging.getLogger(__name__)

COPY_TIMEOUT = 60.0
"""Seconds the daemon gets to take the whole core through the pipe."""


@dataclass(frozen=True)
class Recorded:
    """Where a crash went: ``"daemon"`` or ``"pipeline"``; ``result`` only for the latter."""

    via: str
    result: PipelineResult | None = None


class Sink:
    """Records cores: hand-off first (unless a state directory was asked for), then in-process.

    :param state_dir: run the pipeline here, never the daemon.
    :param daemon: the hand-off socket to try (default: the configuration's).
    """

    def __init__(self, *, state_dir: str | None = None, daemon: str | None = None,
                 config_path: str | None = None) -> None:
        self.config = load_config_for(config_path, state_dir)
        self.use_daemon = state_dir is None
        if state_dir is None and not _writable(self.config.state_directory):
            self.config = load_config_for(config_path, user_state_dir())
            log.info("cannot write the state directory, recording crashes in %s instead "
                     "(or pass --state-dir)", self.config.state_directory)
        self.socket = Path(daemon) if daemon else self.config.handoff_socket
        self._pipeline: Pipeline | None = None

    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            from coredumpd.runtime import pipeline_for

            self._pipeline = pipeline_for(self.config)
        return self._pipeline

    def record(self, context: CrashContext, core: BinaryIO, handle: ProcessHandle | None,
               release: Callable[[], None]) -> Recorded:
        """Record one crash. ``release`` is called exactly once, as soon as the core is safe."""
        released = False

        def release_once() -> None:
            nonlocal released
            if not released:
                released = True
                release()

        try:
            if self.use_daemon and self._try_hand_off(context, core, handle):
                release_once()
                return Recorded("daemon")
            core.seek(0)
            result = self.pipeline().process(context, core.fileno(), handle, metadata_done=True,
                                             release=release_once)
            return Recorded("pipeline", result)
        finally:
            release_once()

    def _try_hand_off(self, context: CrashContext, core: BinaryIO,
                      handle: ProcessHandle | None) -> bool:
        try:
            return self._hand_off(context, core, handle)
        except OSError as err:
            log.warning("hand-off to %s failed, recording here: %s", self.socket, err)
            return False

    def _hand_off(self, context: CrashContext, core: BinaryIO, handle: ProcessHandle | None) -> bool:
        if not self.socket.exists():
            return False
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            pidfd = handle.pidfd if handle is not None and handle.pidfd >= 0 else None
            if not hand_off(self.socket, context.to_json(), read_end, pidfd):
                return False
            os.close(read_end)
            read_end = -1
            core.seek(0)
            _copy_with_deadline(core, write_end, time.monotonic() + COPY_TIMEOUT)
            return True
        finally:
            if read_end >= 0:
                os.close(read_end)
            os.close(write_end)


def user_state_dir() -> Path:
    """The calling user's own state directory (XDG): for an unprivileged catcher, whose
    configured one (``/var/lib/coredumpd``) belongs to root."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "coredumpd"


def _writable(directory: Path) -> bool:
    """Whether we may create files in ``directory`` (or create it: its nearest existing parent)."""
    for path in (directory, *directory.parents):
        if path.exists():
            return os.access(path, os.W_OK | os.X_OK)
    return False


def _copy_with_deadline(core: BinaryIO, fd: int, deadline: float) -> None:
    """Copy ``core`` into the pipe ``fd``; give up (the daemon keeps what it got) at ``deadline``."""
    os.set_blocking(fd, False)
    while chunk := core.read(1 << 20):
        view = memoryview(chunk)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("the daemon took too long to read the core; it keeps a truncated one")
                return
            select.select([], [fd], [], remaining)
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                log.warning("the daemon closed the core stream early")
                return
