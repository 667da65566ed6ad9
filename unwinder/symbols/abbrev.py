"""DWARF abbreviation tables (``.debug_abbrev``), decoded by us for pyelftools' DIE parser.

pyelftools decodes each table through construct, at ~5 ms per table of libc's debug file:
indexing its 2064 CUs for a cold line table spent 10 of 13 s there, and a warm backtrace of
node half of its DIE walks. The tables built here have the interface pyelftools' DIE parser
uses — ``get_abbrev(code)`` giving an ``AbbrevDecl`` with ``tag``, ``children_flag``,
``has_children()`` and ``attr_spec`` items with ``name``, ``form`` and ``value`` (for
``DW_FORM_implicit_const``) — and the same names (``"DW_TAG_subprogram"``; unknown codes stay
ints, as pyelftools' ``Pass`` default leaves them).
"""

from __future__ import annotations

from dataclasses import dataclass

from elftools.dwarf.abbrevtable import AbbrevDecl
from elftools.dwarf.enums import ENUM_DW_AT, ENUM_DW_FORM, ENUM_DW_TAG

from unwinder.errors import SymbolError
from unwinder.leb128 import read_sleb128, read_uleb128

DW_FORM_implicit_const = 0x21  # noqa: N816 - the DWARF name

_TAGS: dict[int, str] = {v: k for k, v in ENUM_DW_TAG.items() if isinstance(v, int)}
_ATTRS: dict[int, str] = {v: k for k, v in ENUM_DW_AT.items() if isinstance(v, int)}
_FORMS: dict[int, str] = {v: k for k, v in ENUM_DW_FORM.items() if isinstance(v, int)}
_CHILDREN = {0: "DW_CHILDREN_no", 1: "DW_CHILDREN_yes"}


@dataclass(frozen=True, slots=True)
class AttrSpec:
    name: str | int
    form: str | int
    value: int | None = None


class AbbrevTable:
    """The declarations of one abbreviation table, by code."""

    __slots__ = ("offset", "_decls")

    def __init__(self, offset: int, decls: dict[int, AbbrevDecl]) -> None:
        self.offset = offset
        self._decls = decls

    def get_abbrev(self, code: int) -> AbbrevDecl:
        """The declaration of ``code``; ``KeyError`` when the table has none (as pyelftools)."""
        return self._decls[code]


def _leb(data: bytes, pos: int, signed: bool) -> tuple[int, int]:
    read = read_sleb128 if signed else read_uleb128
    return read(data, pos, len(data), SymbolError)


def parse_abbrev_table(data: bytes, offset: int) -> AbbrevTable:
    """The table at ``offset`` of ``.debug_abbrev`` bytes ``data``.

    :raises SymbolError: ``offset`` is outside the section, or the table runs past its end.
    """
    if not 0 <= offset < len(data):
        raise SymbolError(f".debug_abbrev: table offset {offset:#x} outside the section")
    decls: dict[int, AbbrevDecl] = {}
    pos = offset
    while True:
        code, pos = _leb(data, pos, False)
        if code == 0:
            break
        tag, pos = _leb(data, pos, False)
        if pos >= len(data):
            raise SymbolError(f".debug_abbrev: declaration {code} truncated")
        children = data[pos]
        pos += 1
        specs = []
        while True:
            name, pos = _leb(data, pos, False)
            form, pos = _leb(data, pos, False)
            if name == 0 and form == 0:
                break
            value = None
            if form == DW_FORM_implicit_const:
                value, pos = _leb(data, pos, True)
            specs.append(AttrSpec(_ATTRS.get(name, name), _FORMS.get(form, form), value))
        decls[code] = AbbrevDecl(code, {"tag": _TAGS.get(tag, tag),
                                        "children_flag": _CHILDREN.get(children, children),
                                        "attr_spec": specs})
    return AbbrevTable(offset, decls)
