"""The signature of a crash: what makes two crashes "the same bug".

The crashing thread's top frames as (build-id, offset in module), hashed: stable across ASLR,
hostnames and users, different when the code differs. Frames without a module (JIT, garbage)
count by their function name when known, else are skipped.
"""

from __future__ import annotations

import hashlib

from unwinder.backtrace import Backtrace

TOP_FRAMES = 3


def crash_signature(backtrace: Backtrace | None, *, frames: int = TOP_FRAMES) -> str | None:
    """A 16-hex-digit signature, or None when the crashing thread has no usable frame."""
    if backtrace is None or not backtrace.threads:
        return None
    crashed = next((t for t in backtrace.threads if t.crashed), backtrace.threads[0])
    parts = []
    for frame in crashed.frames:
        if frame.inline:
            continue
        if frame.module_offset is not None and (frame.build_id or frame.module):
            parts.append(f"{frame.build_id or frame.module_name}+{frame.module_offset:x}")
        elif frame.function:
            parts.append(frame.function)
        if len(parts) == frames:
            break
    if not parts:
        return None
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
