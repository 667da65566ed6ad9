"""The ELF core format as Linux writes it: model, random-access reader, stream reader, writer.

- :class:`CoreReader` — a core file: the model and memory by virtual address.
- :func:`read_core_head` — the header, program headers and notes from the head of a stream.
- :func:`layout_core` / :func:`write_core` — lay out and write a core from notes and memory.
- :mod:`unwinder.core.notes` — typed note payloads (``NT_PRSTATUS``, ``NT_SIGINFO``, …).
"""

from unwinder.core.arch import AARCH64, X86_64, Arch, find_arch
from unwinder.core.layout import build_head, build_note, layout_core
from unwinder.core.model import CoreFile, Note, Thread
from unwinder.core.reader import CoreReader
from unwinder.core.stream import CoreHead, read_core_head
from unwinder.core.writer import write_core

__all__ = [
    "AARCH64", "X86_64", "Arch", "CoreFile", "CoreHead", "CoreReader", "Note", "Thread",
    "build_head", "build_note", "find_arch", "layout_core", "read_core_head", "write_core",
]
