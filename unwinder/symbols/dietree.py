"""Walking a CU's DIE tree without trusting its sibling links.

pyelftools' ``DIE.iter_children`` follows ``DW_AT_sibling`` wherever it points: a link that
points back loops forever (the fuzzer found one: a mutated ``.debug_abbrev`` turned an
attribute of cxx-throw's DWARF into a backward sibling, and the walk spun until killed).
:func:`children` yields the same children, but every step must go forward and stay inside the
CU, and a :class:`DieBudget` bounds the DIEs one walk may read. Both end in
:class:`~unwinder.errors.SymbolError`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

from unwinder.errors import SymbolError

if TYPE_CHECKING:
    from elftools.dwarf.die import DIE

#: sibling forms relative to the CU (the only ones besides ``DW_FORM_ref_addr``)
_CU_REFS = frozenset({"DW_FORM_ref1", "DW_FORM_ref2", "DW_FORM_ref4", "DW_FORM_ref8",
                      "DW_FORM_ref_udata"})


class DieBudget:
    """How many more DIEs a walk may read."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise SymbolError("too many DIEs in one walk")


def children(die: DIE, budget: DieBudget) -> Iterator[DIE]:
    """The children of ``die``, in order (the null DIE that ends them is not yielded)."""
    yield from _children(die, budget)


def _children(die: DIE, budget: DieBudget) -> Generator[DIE, None, int]:
    """Yields the children; returns the offset just past the null DIE that ends them."""
    if not die.has_children:
        return die.offset + die.size
    cu = die.cu
    end = cu.cu_offset + cu.size
    offset = die.offset + die.size
    while True:
        if offset >= end:
            raise SymbolError(f"the children of the DIE at {die.offset:#x} run past their CU")
        budget.spend()
        child = cu.get_DIE_from_refaddr(offset)
        if child.is_null():
            return offset + child.size
        child.set_parent(die)
        yield child
        following = _next_sibling(child, budget)
        if following <= offset:
            raise SymbolError(f"the DIE at {offset:#x} links back to {following:#x}")
        offset = following


def _next_sibling(child: DIE, budget: DieBudget) -> int:
    if not child.has_children:
        return child.offset + child.size
    sibling = child.attributes.get("DW_AT_sibling")
    if sibling is not None and sibling.form in _CU_REFS:
        return child.cu.cu_offset + sibling.value  # type: ignore[no-any-return]
    if sibling is not None and sibling.form == "DW_FORM_ref_addr":
        return sibling.value  # type: ignore[no-any-return]
    # no link: the subtree ends after the null DIE closing its children
    walk = _children(child, budget)
    while True:
        try:
            next(walk)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
