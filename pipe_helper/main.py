"""``coredumpd-helper``: what the kernel runs for each crash with a coredumpd pipe pattern.

    |HELPER [--state-dir DIR] [--config FILE] %P %I %u %g %s %t %c %d %F %h %e

Fast path (stdlib and :mod:`procfs` only): hygiene, argv through the field table, the pidfd
on fd 3 checked against ``%P``, /proc metadata while the task is held, hand-off to the daemon.
When no daemon answers, the same pipeline runs here: no crash is lost. Nothing reaches the
kernel as a traceback; problems go to the kernel log.
"""

from __future__ import annotations

import os
import sys

from pipe_helper.hygiene import drop_dumpable, ensure_std_fds

PIDFD_FD = 3


def parse_options(argv: list[str]) -> tuple[dict[str, str], list[bytes]]:
    """Leading ``--key value`` options (from the installed wrapper), then the specifiers."""
    options: dict[str, str] = {}
    rest = list(argv)
    while len(rest) >= 2 and rest[0].startswith("--") and rest[0] in ("--state-dir", "--config"):
        options[rest[0][2:]] = rest[1]
        rest = rest[2:]
    return options, [os.fsencode(a) for a in rest]


def main() -> int:
    ensure_std_fds()
    drop_dumpable()
    from pipe_helper.kmsg import setup_logging

    log = setup_logging()
    try:
        return _run(sys.argv[1:], log)
    except BaseException as err:  # noqa: BLE001 - nothing may reach the kernel as a traceback
        log.error("crash handling failed: %s: %s", type(err).__name__, err)
        return 1


def _run(argv: list[str], log) -> int:  # type: ignore[no-untyped-def]
    from coredumpd.context import ContextError, CrashContext
    from coredumpd.metadata import collect_metadata
    from procfs.errors import ProcfsError
    from procfs.handle import ProcessHandle
    from procfs.pidfd import read_pidfd_pid

    options, specifiers = parse_options(argv)
    try:
        context = CrashContext.from_argv(specifiers)
    except ContextError as err:
        log.error("bad arguments from the kernel (%s); the core is dropped", err)
        return 1
    missing = context.missing_mandatory()
    if missing:
        log.error("the kernel gave no %s; the core is dropped", ", ".join(missing))
        return 1
    log.info("process %s (%s) of user %s dumped core (signal %s)", context.pid,
             context.comm.decode(errors="backslashreplace") if context.comm else "?",
             context.uid, context.signal)
    handle = None
    try:
        if context.by_pidfd and read_pidfd_pid(PIDFD_FD) == context.pid:
            handle = ProcessHandle.from_pidfd(PIDFD_FD, take=True)
        else:
            if context.by_pidfd:
                log.warning("pidfd on fd 3 does not name pid %s; using /proc", context.pid)
            handle = ProcessHandle.from_pid(context.pid)
    except (ProcfsError, OSError) as err:
        log.warning("cannot open pid %s: %s; continuing without /proc", context.pid, err)
        context.notes.append(f"no /proc access: {err}")
    if handle is not None:
        try:
            collect_metadata(context, handle)
        except ProcfsError as err:
            log.warning("metadata of pid %s: %s", context.pid, err)
            context.notes.append(f"metadata incomplete: {err}")
    from coredumpd.config import load_config
    from pipe_helper.handoff import hand_off

    config = load_config(options.get("config"))
    pidfd = handle.pidfd if handle is not None else None
    if hand_off(config.handoff_socket, context.to_json(), 0, pidfd):
        log.info("pid %s handed off to the daemon", context.pid)
        return 0
    # No daemon: the same pipeline, here. The task is released when fd 0 closes.
    from coredumpd.runtime import FdOwner, open_pipeline

    core = FdOwner(0)
    pipeline = open_pipeline(state_dir=options.get("state-dir"), config_path=options.get("config"))
    result = pipeline.process(context, 0, handle, metadata_done=True, release=core.close)
    core.close()
    stored = result.stored.state if result.stored else "not stored"
    log.info("pid %s recorded (core %s, backtrace %s)", context.pid, stored,
             result.backtrace_source or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
