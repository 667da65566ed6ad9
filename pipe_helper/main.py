"""``coredumpd-helper``: what the kernel runs for each crash with a coredumpd pipe pattern.

    |HELPER [--state-dir DIR] [--config FILE] [--handoff-socket PATH] %P %I %u %g %s %t %c %d %F %h %e

Fast path (``--handoff-socket``, written into the wrapper by ``coredumpd install``; stdlib
only, a few milliseconds): hygiene, then the kernel's arguments as they came, the core pipe
and the pidfd on fd 3 to the daemon, which parses the arguments, checks the pidfd against
``%P`` and reads /proc while the task is held (it is, until the stream is drained). Else, or
when that fails: argv through the field table, the configuration's hand-off socket (unless
it is the one the fast path just failed on), and when no daemon answers the same pipeline
runs here, metadata first: no crash is lost. Nothing
reaches the kernel as a traceback; problems go to the kernel log.
"""

from __future__ import annotations

import os
import sys
import time

from pipe_helper.hygiene import drop_dumpable, ensure_std_fds

PIDFD_FD = 3


def parse_options(argv: list[str]) -> tuple[dict[str, str], list[bytes]]:
    """Leading ``--key value`` options (from the installed wrapper), then the specifiers."""
    options: dict[str, str] = {}
    rest = list(argv)
    while len(rest) >= 2 and rest[0] in ("--state-dir", "--config", "--handoff-socket"):
        options[rest[0][2:]] = rest[1]
        rest = rest[2:]
    return options, [os.fsencode(a) for a in rest]


def main() -> int:
    started = time.monotonic()
    ensure_std_fds()
    drop_dumpable()
    options, specifiers = parse_options(sys.argv[1:])
    tried = options.get("handoff-socket")
    if tried is not None and _fast_hand_off(tried, specifiers, started):
        return 0
    from pipe_helper.kmsg import setup_logging

    log = setup_logging()
    try:
        return _run(options, specifiers, log, started, tried)
    except BaseException as err:  # noqa: BLE001 - nothing may reach the kernel as a traceback
        log.error("crash handling failed: %s: %s", type(err).__name__, err)
        return 1


def _fast_hand_off(path: str, specifiers: list[bytes], started: float) -> bool:
    """The kernel's arguments, the core pipe and the pidfd (fd 3, when ``%F`` opened one) to
    the daemon, unparsed; False on any failure (the full path follows)."""
    try:
        from pipe_helper.handoff import hand_off
        from pipe_helper.kmsgline import handed_off_line, write_kmsg

        pidfd = PIDFD_FD if _is_open(PIDFD_FD) else None
        if not hand_off(path, None, 0, pidfd, {"metadata": "pending"}, argv=specifiers):
            return False
        pid = specifiers[0].decode(errors="replace") if specifiers else "?"
        write_kmsg(handed_off_line(pid, started))
        return True
    except Exception:  # noqa: BLE001 - the full path handles the crash (and logs)
        return False


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _run(options: dict[str, str], specifiers: list[bytes], log, started: float,  # type: ignore[no-untyped-def]
         tried: str | None) -> int:
    """The full path; ``tried`` is the socket the fast path failed on (not tried again)."""
    from coredumpd.context import ContextError, CrashContext

    try:
        context = CrashContext.from_kernel(specifiers)
    except ContextError as err:
        log.error("%s; the core is dropped", err)
        return 1
    log.info("process %s (%s) of user %s dumped core (signal %s)", context.pid,
             context.comm.decode(errors="backslashreplace") if context.comm else "?",
             context.uid, context.signal)
    from coredumpd.config import load_config
    from pipe_helper.handoff import hand_off

    # Hand off first: the task stays held until the daemon drains the stream, so the daemon
    # reads /proc itself through the pidfd (importing the procfs layer here cost ~40 ms).
    config = load_config(options.get("config"))
    pidfd = PIDFD_FD if context.by_pidfd else None
    # a daemon that failed the fast path (down, busy, hung) would fail again: up to twice the
    # hand-off timeouts with the task held, before the pipeline below runs anyway
    if str(config.handoff_socket) != tried and hand_off(
            config.handoff_socket, context.to_json(), 0, pidfd, {"metadata": "pending"}):
        from pipe_helper.kmsgline import handed_off_line

        log.info("%s", handed_off_line(context.pid, started))
        return 0
    # No daemon: the same pipeline, here. The task is released when fd 0 closes.
    from coredumpd.runtime import FdOwner, open_crash_handle, open_pipeline

    handle = open_crash_handle(context, pidfd)
    core = FdOwner(0)
    pipeline = open_pipeline(state_dir=options.get("state-dir"), config_path=options.get("config"))
    result = pipeline.process(context, 0, handle, release=core.close)
    core.close()
    stored = result.stored.state if result.stored else "not stored"
    log.info("pid %s recorded (core %s, backtrace %s)", context.pid, stored,
             result.backtrace_source or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
