"""The catcher: run a command under ``PTRACE_SEIZE`` and capture any crash in its process tree.

No syscall tracing: the tree runs at full speed and stops only for signals, clone/fork/vfork/exec
events and thread exits (``PTRACE_O_TRACE{CLONE,FORK,VFORK,EXEC,EXIT}``; no ``EXITKILL``, so if the
catcher dies the tree runs on, and a daemon the command leaves behind outlives it).

When to capture (research/procfs-sandbox.md §3.5):

- **at the signal-delivery stop** of a core signal whose disposition is the default (``SigCgt``
  and ``SigIgn`` of ``/proc/<tid>/status``): the fault's registers and memory exactly as the
  kernel would dump them. A handled signal goes through; if the handler re-raises it with the
  default restored, the next delivery is caught.
- **at the exit stop** of a thread dying of a core signal, when the disposition could not be
  read (gVisor's ``status`` has no ``Sig*`` lines): the memory is still mapped at that stop, and
  the siginfo comes from the delivery stop we saw before.

After the capture the fatal signal is delivered (``PTRACE_CONT`` with it), so the process dies
as it would have: its parent, the kernel's ``core_pattern`` and restart policies see the same
death. The catcher's own exit mirrors the command's: its exit code, or death by the same signal
(see :func:`mirror_exit` for what that can and cannot reproduce).
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import signal
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from coredumpd.catch_collect import open_tracee_handle
from coredumpd.catch_freeze import Resume, ResumeHow, stop_traced
from coredumpd.catch_policy import Disposition, is_core_signal, signal_disposition
from procfs.errors import ProcessGone, ProcfsError
from procfs.memory_base import MemoryMethod
from procfs.ptrace import cont, listen, read_siginfo, seize
from procfs.ptrace_consts import PtraceEvent, PtraceOptions
from procfs.siginfo import Siginfo
from procfs.wait import WaitKind, WaitResult, read_wait

if TYPE_CHECKING:  # capturing (and recording) loads only when something crashes
    from coredumpd.catch_capture import Capture
    from coredumpd.catch_sink import Sink

log = logging.getLogger(__name__)

OPTIONS = (PtraceOptions.TRACECLONE | PtraceOptions.TRACEFORK | PtraceOptions.TRACEVFORK
           | PtraceOptions.TRACEEXEC | PtraceOptions.TRACEEXIT)
"""What the tree is traced for: new tasks (to follow them), exec, and thread exits (trigger B)."""

FORWARDED = (signal.SIGTERM, signal.SIGHUP)
"""Signals sent to the catcher alone that it passes on to the command."""
IGNORED = (signal.SIGINT, signal.SIGQUIT)
"""Terminal signals: they reach the command through the process group; the catcher waits."""


@dataclass(frozen=True)
class _Suspect:
    """A core signal delivered where its disposition was unreadable: judged at the exit stop."""

    tid: int
    signo: int
    siginfo: Siginfo | None


@dataclass
class Supervisor:
    """Traces one command's process tree and captures its crashes into ``sink``.

    :ivar captures: every capture made, in order.
    """

    sink: Sink
    memory_methods: Iterable[MemoryMethod] | None = None
    temp_dir: str | None = None
    captures: list[Capture] = field(default_factory=list)
    _captured: set[int] = field(default_factory=set)
    _suspects: dict[int, _Suspect] = field(default_factory=dict)

    # -- running -----------------------------------------------------------------------

    def launch(self, argv: list[str]) -> int:
        """Fork, seize the child before it runs anything, then let it exec ``argv[0]``.

        If ptrace is refused here the command still runs, untraced, and a warning says so.
        """
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: wait to be seized, then become the command
            try:
                os.close(ready_w)
                os.read(ready_r, 1)
                os.close(ready_r)
                os.execvp(argv[0], argv)
            except OSError as err:
                os.write(2, f"coredumpd catch: {argv[0]}: {err.strerror}\n".encode())
                os._exit(127 if err.errno == errno.ENOENT else 126)
            except BaseException:  # noqa: BLE001 - never return into the parent's code
                os._exit(126)
        os.close(ready_r)
        try:
            seize(pid, OPTIONS)
        except ProcfsError as err:
            log.warning("cannot trace %s, running it without crash capture: %s", argv[0], err)
        finally:
            os.write(ready_w, b"x")
            os.close(ready_w)
        return pid

    def run(self, argv: list[str]) -> int:
        """Run ``argv`` to its end; return its wait status."""
        root = self.launch(argv)
        previous = _install_signal_handlers(root)
        try:
            while True:
                try:
                    report = read_wait(-1)
                except ProcessGone:  # nothing left: the root was reaped by someone else?
                    return 0
                if report.gone:
                    self._captured.discard(report.pid)
                    self._suspects.pop(report.pid, None)
                    if report.pid == root:
                        return report.status
                    continue
                try:
                    self.dispatch(report)
                except ProcessGone:
                    continue  # killed while stopped: its exit report follows
        finally:
            for signo, handler in previous.items():
                signal.signal(signo, handler)

    def dispatch(self, report: WaitResult) -> None:
        """Handle one stop and resume the thread (or hold it for a capture first)."""
        tid = report.pid
        if report.kind == WaitKind.SIGNAL_STOP:
            if is_core_signal(report.signal):
                self._core_signal(tid, report.signal or 0)
            else:
                cont(tid, report.signal or 0)
        elif report.kind == WaitKind.GROUP_STOP:
            listen(tid)
        elif report.kind == WaitKind.EVENT_STOP and report.event == PtraceEvent.EXIT:
            self._exit_stop(tid, report.event_message)
        else:  # interrupt stops, new tasks, fork/clone/exec events
            cont(tid, 0)

    # -- triggers ----------------------------------------------------------------------

    def _core_signal(self, tid: int, signo: int) -> None:
        try:
            with open(f"/proc/{tid}/status", "rb") as f:
                status = f.read()
        except OSError:
            cont(tid, signo)
            return
        tgid = _tgid(status) or tid
        disposition = signal_disposition(status, signo)
        if tgid in self._captured or disposition in (Disposition.HANDLED, Disposition.IGNORED):
            cont(tid, signo)
            return
        siginfo = _siginfo(tid)
        if disposition == Disposition.UNKNOWN:
            self._suspects[tgid] = _Suspect(tid, signo, siginfo)
            cont(tid, signo)
            return
        self._capture(tgid, tid, signo, siginfo, Resume(ResumeHow.CONT, signo))

    def _exit_stop(self, tid: int, status: int | None) -> None:
        fatal = (status is not None and os.WIFSIGNALED(status)
                 and is_core_signal(os.WTERMSIG(status)))
        if not fatal:
            cont(tid, 0)
            return
        assert status is not None
        tgid = _tgid_of(tid) or tid
        suspect = self._suspects.pop(tgid, None)
        if tgid in self._captured or suspect is None:
            # no suspect: the kernel killed it with no delivery stop we could judge (a core
            # signal sent while we were capturing another thread); nothing reliable to add
            cont(tid, 0)
            return
        signo = os.WTERMSIG(status)
        self._capture(tgid, tid, signo, suspect.siginfo if suspect.signo == signo else None,
                      Resume(), dumping=suspect.tid)

    def _capture(self, tgid: int, tid: int, signo: int, siginfo: Siginfo | None,
                 resume: Resume, dumping: int | None = None) -> None:
        """Hold every thread of ``tgid`` (``tid`` is stopped already) and capture it.

        :param dumping: the thread that took the signal, when it is not ``tid`` (at an exit
            stop, any thread of the dying group may report first); it leads the core.
        """
        self._captured.add(tgid)
        held = stop_traced(tgid, {tid: resume})
        tids = held.tids
        if dumping is not None and dumping in tids:
            tids.remove(dumping)
            tids.insert(0, dumping)
        log.info("pid %s (thread %s) dies of %s: capturing %d threads", tgid, tid,
                 signal.Signals(signo).name, len(tids))
        handle = None
        # We write this crash's core: the kernel must not dump it again into whatever
        # core_pattern names (RLIMIT_CORE 1 makes it skip the dump in every mode). Put back if
        # the capture fails, so the kernel's core is the fallback.
        previous_limit = _limit_kernel_dump(tgid)
        try:
            from coredumpd.catch_capture import capture

            handle = open_tracee_handle(tgid)
            result = capture(handle, tids, signo=signo, siginfo=siginfo, door="catch",
                             sink=self.sink, release=held.resume,
                             memory_methods=self.memory_methods, temp_dir=self.temp_dir)
            self.captures.append(result)
            log.info("pid %s: core of %d bytes recorded via %s (memory: %s)", tgid,
                     result.core_size, result.recorded.via if result.recorded else "nothing",
                     result.context.memory_method)
        except Exception as err:  # noqa: BLE001 - the tree must go on whatever the capture did
            log.error("capture of pid %s failed, letting it go: %s: %s", tgid,
                      type(err).__name__, err, exc_info=log.isEnabledFor(logging.DEBUG))
            if previous_limit is not None:
                _set_core_limit(tgid, previous_limit)
        finally:
            held.resume()
            if handle is not None:
                handle.close()


# -- helpers ------------------------------------------------------------------------------


def _limit_kernel_dump(tgid: int) -> tuple[int, int] | None:
    """Set ``tgid``'s RLIMIT_CORE to 1; return the previous limit (None if it failed)."""
    try:
        return resource.prlimit(tgid, resource.RLIMIT_CORE, (1, 1))
    except (OSError, ValueError) as err:
        log.warning("cannot stop the kernel from dumping pid %s too: %s", tgid, err)
        return None


def _set_core_limit(tgid: int, limit: tuple[int, int]) -> None:
    try:
        resource.prlimit(tgid, resource.RLIMIT_CORE, limit)
    except (OSError, ValueError):
        pass


def _tgid(status: bytes) -> int | None:
    for line in status.split(b"\n"):
        if line.startswith(b"Tgid:"):
            try:
                return int(line[5:])
            except ValueError:
                return None
    return None


def _tgid_of(tid: int) -> int | None:
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            return _tgid(f.read())
    except OSError:
        return None


def _siginfo(tid: int) -> Siginfo | None:
    try:
        return read_siginfo(tid)
    except ProcessGone:
        raise
    except ProcfsError as err:
        log.info("no siginfo for thread %s, ignoring: %s", tid, err)
        return None


def _install_signal_handlers(root: int) -> dict[int, object]:
    def forward(signo: int, frame: object) -> None:
        try:
            os.kill(root, signo)
        except OSError:
            pass

    previous: dict[int, object] = {}
    for signo in FORWARDED:
        previous[signo] = signal.signal(signo, forward)
    for signo in IGNORED:
        previous[signo] = signal.signal(signo, signal.SIG_IGN)
    return previous


def mirror_exit(status: int) -> int:
    """End the catcher the way the command ended; returns the exit code if it exited.

    A command killed by a signal makes the catcher kill itself with the same signal, so the
    caller sees ``WIFSIGNALED`` and the same ``WTERMSIG``. ``WCOREDUMP`` is **not** reproduced:
    the kernel sets it only after dumping the dying process itself, and a dump of the catcher
    (a Python interpreter) would be a bogus crash in whatever ``core_pattern`` points to. So the
    catcher makes itself non-dumpable (``PR_SET_DUMPABLE`` 0, ``RLIMIT_CORE`` 0) before raising
    the signal, and the caller sees the core bit clear. The command's own core — ours, and the
    kernel's if its ``core_pattern`` wrote one — is in the crash record.
    """
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if not os.WIFSIGNALED(status):
        return 1
    signo = os.WTERMSIG(status)
    sys.stdout.flush()
    sys.stderr.flush()
    _no_core_for_us()
    signal.signal(signo, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signo})
    os.kill(os.getpid(), signo)
    return 128 + signo  # a signal whose default is not to die (should not happen)


def _no_core_for_us() -> None:
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    except (ValueError, OSError):
        pass
    try:
        import ctypes

        pr_set_dumpable = 4
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
