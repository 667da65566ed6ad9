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
