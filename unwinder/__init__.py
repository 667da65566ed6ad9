"""Analysis of crashed images: the ELF core format, address spaces, CFI unwinding, symbols.

This package does not import :mod:`procfs`: live memory is handed in as an object with a
``read(addr, size)`` method.
"""
