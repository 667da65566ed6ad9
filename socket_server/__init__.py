"""The daemon's listeners: the kernel's coredump socket and the local hand-off socket."""
