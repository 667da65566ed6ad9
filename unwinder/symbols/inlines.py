"""Inline scopes at an address: the ``DW_TAG_subprogram`` and its nested inlined calls.

pyelftools walks the DIEs, lazily and per CU: the first lookup in a CU lists the
subprograms with code among the children of the CU and of its namespaces (sibling links skip
everything else), later lookups only descend the one subprogram that contains the address.
GNU C nested functions (children of another subprogram) are not listed; their addresses are
named by the symbol table. Names follow ``DW_AT_abstract_origin`` and ``DW_AT_specification``
and prefer the linkage name (``__GI_raise``, ``_ZN…``), which is what eu-stack and gdb print.
"""

from __future__ import annotations

from dataclasses import dataclass

from elftools.dwarf.die import DIE

from unwinder.symbols.dieranges import contains, cu_base_address, die_ranges
from unwinder.symbols.dietree import DieBudget, children
from unwinder.symbols.dwarf import DwarfData
from unwinder.symbols.elfguard import guard

#: abstract_origin/specification hops followed when naming a DIE
MAX_NAME_HOPS = 8
#: nesting depth of scopes searched below a subprogram
MAX_DEPTH = 64
#: DIEs one walk of a CU reads at most (a corrupt CU cannot make us loop for long)
MAX_DIES_PER_CU = 2_000_000

_CONTAINER_TAGS = frozenset({"DW_TAG_namespace", "DW_TAG_module"})
_NESTING_TAGS = frozenset({"DW_TAG_lexical_block", "DW_TAG_inlined_subroutine"})


@dataclass(frozen=True)
class Scope:
    """A function or inlined call containing an address.

    :ivar name: linkage name if any, else ``DW_AT_name`` (not demangled).
    :ivar start: start of the scope's range that contains the address.
    :ivar call_file: ``DW_AT_call_file`` (a file number of the CU's line program).
    """

    name: str | None
    start: int
    inline: bool
    call_file: int | None = None
    call_line: int | None = None
    call_column: int | None = None


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value if isinstance(value, str) else None


def die_name(die: DIE) -> str | None:
    """Linkage name or name of ``die``, following origins and specifications."""
    plain = None
    current: DIE | None = die
    for _ in range(MAX_NAME_HOPS):
        if current is None:
            break
        attrs = current.attributes
        for key in ("DW_AT_linkage_name", "DW_AT_MIPS_linkage_name"):
            if key in attrs:
                linkage = _text(attrs[key].value)
                if linkage:
                    return linkage
        if plain is None and "DW_AT_name" in attrs:
            plain = _text(attrs["DW_AT_name"].value)
        nxt = None
        for key in ("DW_AT_abstract_origin", "DW_AT_specification"):
            if key in attrs:
                nxt = current.get_DIE_from_attribute(key)
                break
        current = nxt
    return plain


def _int_attr(die: DIE, name: str) -> int | None:
    attr = die.attributes.get(name)
    return attr.value if attr is not None and isinstance(attr.value, int) else None


class CUScopes:
    """Subprograms of one CU with their ranges; inline chains on demand."""

    def __init__(self, dwarf: DwarfData, cu_offset: int) -> None:
        self.dwarf = dwarf
        with guard(f"DIEs of CU {cu_offset:#x}"):
            self.cu = dwarf.dwarfinfo.get_CU_at(cu_offset)
            top = self.cu.get_top_DIE()
            self.base = cu_base_address(top)
            self.subprograms: list[tuple[list[tuple[int, int]], DIE]] = []
            # Only the CU's and namespaces' children: compilers put concrete (out-of-line)
            # subprograms there, and sibling links let the walk skip every subtree, which
            # is 10-20x cheaper than iter_DIEs() over types, parameters and locals.
            stack, budget = [top], DieBudget(MAX_DIES_PER_CU)
            while stack:
                for die in children(stack.pop(), budget):
                    if die.tag == "DW_TAG_subprogram":
                        ranges = die_ranges(die, dwarf.range_lists, self.base)
                        if ranges:
                            self.subprograms.append((ranges, die))
                    elif die.tag in _CONTAINER_TAGS:
                        stack.append(die)

    def chain(self, address: int) -> list[Scope]:
        """Scopes containing ``address``, outermost (the subprogram) first; empty if none."""
        with guard(f"inline scopes in CU {self.cu.cu_offset:#x}"):
            best = None
            for ranges, die in self.subprograms:
                if contains(ranges, address):
                    size = sum(end - start for start, end in ranges)
                    if best is None or size < best[0]:
                        best = (size, ranges, die)
            if best is None:
                return []
            _, ranges, die = best
            scopes = [Scope(die_name(die), _range_start(ranges, address, die), False)]
            return scopes + self._search(die, address, 0, DieBudget(MAX_DIES_PER_CU))

    def _search(self, parent: DIE, address: int, depth: int, budget: DieBudget) -> list[Scope]:
        """Inlined calls below ``parent`` containing ``address``, outermost first."""
        if depth >= MAX_DEPTH:
            return []
        for child in children(parent, budget):
            if child.tag not in _NESTING_TAGS:
                continue
            ranges = die_ranges(child, self.dwarf.range_lists, self.base)
            if child.tag == "DW_TAG_inlined_subroutine":
                if contains(ranges, address):
                    scope = Scope(die_name(child), _range_start(ranges, address, child), True,
                                  _int_attr(child, "DW_AT_call_file"),
                                  _int_attr(child, "DW_AT_call_line"),
                                  _int_attr(child, "DW_AT_call_column"))
                    return [scope, *self._search(child, address, depth + 1, budget)]
            elif not ranges or contains(ranges, address):
                found = self._search(child, address, depth + 1, budget)
                if found or ranges:
                    return found  # a block containing the address: nothing else can
        return []


def _range_start(ranges: list[tuple[int, int]], address: int, die: DIE) -> int:
    low = _int_attr(die, "DW_AT_low_pc")
    if low is not None and low <= address:
        return low
    for start, end in ranges:
        if start <= address < end:
            return start
    return ranges[0][0]
