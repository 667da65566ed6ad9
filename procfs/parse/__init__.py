"""Pure parsers for /proc files: bytes in, frozen dataclass out, no I/O.

One module per concept. Kernel strings stay ``bytes``; malformed input raises
:class:`procfs.errors.ParseError` and nothing else.
"""
