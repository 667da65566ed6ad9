"""The kernel's process interfaces: handles, race-free /proc snapshots, memory, pidfds, ptrace.

Standard library and ctypes only; knows nothing of cores.
"""
