"""Names of signals and of their ``si_code`` values, as ``<signal.h>`` spells them.

Pure tables: the CLI, the journal writer and the demo show ``SIGSEGV (SEGV_MAPERR)`` instead
of ``11 (1)``.
"""

from __future__ import annotations

import signal

#: si_code values that any signal may carry (``si_code <= 0``: sent by a process).
_GENERIC = {
    0: "SI_USER", -1: "SI_QUEUE", -2: "SI_TIMER", -3: "SI_MESGQ", -4: "SI_ASYNCIO",
    -5: "SI_SIGIO", -6: "SI_TKILL", 0x80: "SI_KERNEL",
}

_BY_SIGNAL: dict[int, dict[int, str]] = {
    signal.SIGSEGV: {1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 3: "SEGV_BNDERR", 4: "SEGV_PKUERR",
                     5: "SEGV_ACCADI", 6: "SEGV_ADIDERR", 7: "SEGV_ADIPERR", 8: "SEGV_MTEAERR",
                     9: "SEGV_MTESERR", 10: "SEGV_CPERR"},
    signal.SIGBUS: {1: "BUS_ADRALN", 2: "BUS_ADRERR", 3: "BUS_OBJERR", 4: "BUS_MCEERR_AR",
                    5: "BUS_MCEERR_AO"},
    signal.SIGILL: {1: "ILL_ILLOPC", 2: "ILL_ILLOPN", 3: "ILL_ILLADR", 4: "ILL_ILLTRP",
                    5: "ILL_PRVOPC", 6: "ILL_PRVREG", 7: "ILL_COPROC", 8: "ILL_BADSTK",
                    9: "ILL_BADIADDR"},
    signal.SIGFPE: {1: "FPE_INTDIV", 2: "FPE_INTOVF", 3: "FPE_FLTDIV", 4: "FPE_FLTOVF",
                    5: "FPE_FLTUND", 6: "FPE_FLTRES", 7: "FPE_FLTINV", 8: "FPE_FLTSUB",
                    9: "FPE_FLTUNK", 10: "FPE_CONDTRAP"},
    signal.SIGTRAP: {1: "TRAP_BRKPT", 2: "TRAP_TRACE", 3: "TRAP_BRANCH", 4: "TRAP_HWBKPT",
                     5: "TRAP_UNK", 6: "TRAP_PERF"},
    signal.SIGSYS: {1: "SYS_SECCOMP", 2: "SYS_USER_DISPATCH"},
}


def signal_name(signo: int) -> str:
    """``SIGSEGV`` for 11; ``SIG42`` for a number with no name (real-time signals, garbage)."""
    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"SIG{signo}"


def si_code_name(signo: int, code: int) -> str:
    """The symbolic name of ``si_code`` for signal ``signo``, or the number as text."""
    if code > 0 and code != 0x80:
        name = _BY_SIGNAL.get(signo, {}).get(code)
    else:
        name = _GENERIC.get(code)
    return name or str(code)
