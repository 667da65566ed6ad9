"""Errors of the unwinder layer: one root, precise kinds with typed payloads."""

from __future__ import annotations


class UnwindError(Exception):
    """Root of every error raised by :mod:`unwinder`."""


class CorruptCore(UnwindError):
    """A core file or stream is malformed.

    :ivar offset: byte offset in the core where the problem was found (``None`` when the
        problem is not tied to one place, e.g. a missing mandatory note).
    :ivar reason: what is wrong, in a few words.
    """

    def __init__(self, offset: int | None, reason: str) -> None:
        self.offset = offset
        self.reason = reason
        where = f" at offset {offset:#x}" if offset is not None else ""
        super().__init__(f"corrupt core{where}: {reason}")


class FaultError(UnwindError):
    """Memory at ``address`` is not available in this address space.

    :ivar address: the first virtual address that could not be read.
    """

    def __init__(self, address: int, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"cannot read memory at {address:#x}: {reason}")


class MissingDebugInfo(UnwindError):
    """A module has no usable unwind or symbol information."""


class CfiError(UnwindError):
    """Call frame information (``.eh_frame``, ``.eh_frame_hdr``, ``.debug_frame``) or a DWARF
    expression in it is malformed or cannot be evaluated.

    :ivar offset: byte offset in the section (or expression) where the problem was found, or
        ``None`` when it is not tied to one place.
    :ivar reason: what is wrong, in a few words.
    """

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.offset = offset
        self.reason = reason
        where = f" at offset {offset:#x}" if offset is not None else ""
        super().__init__(f"bad call frame information{where}: {reason}")


class SectionError(UnwindError):
    """An ELF section's compressed bytes cannot be inflated (unknown compression, corrupt
    data, a size other than its header declares). Readers turn it into their own kind."""


class SymbolError(UnwindError):
    """Symbol tables, DWARF line programs or debug information entries are malformed.

    :ivar reason: what is wrong, in a few words (which section, which offset).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"bad symbol information: {reason}")
