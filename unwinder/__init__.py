"""Analysis of crashed images: the ELF core format, address spaces, CFI unwinding, symbols.

This package does not import :mod:`procfs`: live memory is handed in as an object with a
``read(addr, size)`` method.

Records are NamedTuples, or classes with ``__slots__`` where a record needs more (equality on
some fields only, mutable state), never dataclasses: ``coredumpd backtrace`` is measured
against ``eu-stack``'s start-up, and defining a frozen dataclass costs 0.4 ms (a NamedTuple
0.05 ms) on top of 6 ms to import :mod:`dataclasses`. A unit test keeps :mod:`dataclasses`
off the backtrace path.
"""
