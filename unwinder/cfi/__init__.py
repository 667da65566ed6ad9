"""Call frame information: from a pc to the rules that recover the caller's registers.

Our own engine, pure Python, because pyelftools' CFI decoder is ~25x too slow per lookup
(it parses and decodes whole sections) and has bugs that matter here: it crashes on
``DW_CFA_GNU_args_size`` (common in C++), scales ``def_cfa_sf`` by the code alignment factor,
has no ``.eh_frame_hdr`` support and does not evaluate DWARF expressions. pyelftools is used
only to locate sections in an ELF file (:mod:`unwinder.cfi.elfsource`).

Modules, one concept each:

- :mod:`~unwinder.cfi.table` -- :class:`CfiTable`, all CFI of one module (the entry point);
- :mod:`~unwinder.cfi.rules` -- :class:`CfiRow` and the rule records it returns;
- :mod:`~unwinder.cfi.expr` -- the DWARF expression stack machine;
- :mod:`~unwinder.cfi.source` -- lookups and caches over one section;
- :mod:`~unwinder.cfi.hdr`, :mod:`~unwinder.cfi.scan`, :mod:`~unwinder.cfi.index` -- finding
  the FDE of a pc;
- :mod:`~unwinder.cfi.entries` -- CIE/FDE headers; :mod:`~unwinder.cfi.program` -- CFA
  programs;
- :mod:`~unwinder.cfi.pointers`, :mod:`~unwinder.leb128` (shared with the symbols) -- encoded values;
- :mod:`~unwinder.cfi.elfsource` (and :mod:`unwinder.elfcompress`) -- getting the bytes.

Names are imported from their modules on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unwinder.lazy import lazy_exports

if TYPE_CHECKING:
    from unwinder.cfi.expr import evaluate
    from unwinder.cfi.rules import CfaRule, CfiRow, RegisterRule, RuleKind
    from unwinder.cfi.table import CfiTable

#: exported name -> the submodule defining it
_EXPORTS = {
    "evaluate": "expr",
    "CfaRule": "rules", "CfiRow": "rules", "RegisterRule": "rules", "RuleKind": "rules",
    "CfiTable": "table",
}

__all__ = ["CfaRule", "CfiRow", "CfiTable", "RegisterRule", "RuleKind", "evaluate"]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
