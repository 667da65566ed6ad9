"""Answers of :meth:`~unwinder.symbols.module.ModuleSymbols.describe`, by address.

Our own. A warm backtrace asks again about the addresses an earlier crash of the same build
asked about (the same ``abort``/``raise`` path of libc, the same crashing function); answering
those from this table means the DWARF is never decompressed nor walked, and the module's whole
line table never loaded (six of libc's debug file's megabytes). An address not in the table is
described from the DWARF as before and added.

Stored by :class:`~unwinder.symbols.cache.SymbolCache` as one JSON part: a list of
``[address, [[function, offset, file, line, column, inline, mangled], ...]]``, checked field by
field when read (a well-formed file of another shape is refused like a corrupt one).
"""

from __future__ import annotations

import json

from unwinder.errors import SymbolError
from unwinder.symbols.model import SourceLocation, SymbolizedFrame

#: addresses kept per module at most (a table beyond this stops growing)
MAX_ADDRESSES = 1 << 14


class DescribedAddresses:
    """``address → frames`` of one module's DWARF and symbols; remembers whether it grew."""

    def __init__(self, answers: dict[int, tuple[SymbolizedFrame, ...]] | None = None) -> None:
        self.answers = answers if answers is not None else {}
        self.changed = False

    def __len__(self) -> int:
        return len(self.answers)

    @property
    def full(self) -> bool:
        """No more addresses are kept."""
        return len(self.answers) >= MAX_ADDRESSES

    def find(self, address: int) -> list[SymbolizedFrame] | None:
        frames = self.answers.get(address)
        return list(frames) if frames is not None else None

    def add(self, address: int, frames: list[SymbolizedFrame]) -> None:
        if not self.full and address not in self.answers:
            self.answers[address] = tuple(frames)
            self.changed = True

    def to_bytes(self) -> bytes:
        rows = [[address, [_frame_to_list(f) for f in frames]]
                for address, frames in sorted(self.answers.items())]
        return json.dumps(rows, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> DescribedAddresses:
        """:raises SymbolError: not a table this module wrote."""
        try:
            rows = json.loads(data)
        except (ValueError, RecursionError) as err:
            raise SymbolError(f"described addresses: {err}") from err
        if not isinstance(rows, list) or len(rows) > MAX_ADDRESSES:
            raise SymbolError("described addresses: not a list of rows")
        answers: dict[int, tuple[SymbolizedFrame, ...]] = {}
        for row in rows:
            if not (isinstance(row, list) and len(row) == 2 and _is_int(row[0])
                    and isinstance(row[1], list)):
                raise SymbolError("described addresses: malformed row")
            answers[row[0]] = tuple(_frame_from_list(f) for f in row[1])
        return cls(answers)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional(value: object, kind: type) -> bool:
    return value is None or (_is_int(value) if kind is int else isinstance(value, kind))


def _frame_to_list(frame: SymbolizedFrame) -> list[object]:
    loc = frame.location
    return [frame.function, frame.function_offset, loc.file if loc else None,
            loc.line if loc else None, loc.column if loc else None, frame.inline, frame.mangled]


def _frame_from_list(item: object) -> SymbolizedFrame:
    if not isinstance(item, list) or len(item) != 7:
        raise SymbolError("described addresses: malformed frame")
    function, offset, file, line, column, inline, mangled = item
    if not (_optional(function, str) and _optional(offset, int) and _optional(file, str)
            and isinstance(inline, bool) and _optional(mangled, str)):
        raise SymbolError("described addresses: malformed frame")
    location = None
    if file is not None:
        if not (_is_int(line) and _is_int(column)):
            raise SymbolError("described addresses: malformed location")
        location = SourceLocation(file, line, column)
    return SymbolizedFrame(function, offset, location, inline, mangled)
