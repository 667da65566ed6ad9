"""coredumpd: receive every crash on a Linux host, keep the core, explain it, find it again."""

__version__ = "0.1.0"
