"""The signature of a crash: what makes two crashes "the same bug".

The crashing thread's top physical frames as (build-id, offset in module), hashed: stable
across ASLR, hostnames and users, different when the code differs. Frames without a module
(JIT, garbage) count by their function name when known, else are skipped.

It can be computed from a symbolised :class:`Backtrace` or, before symbols exist, from the raw
frames of a live unwind and the module map (:func:`signature_from_parts` of the same parts
gives the same value): the policy decides on it before the core is stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from unwinder.backtrace import Backtrace

TOP_FRAMES = 3

#: (build-id hex or module name, offset in module, function name) of one physical frame
FramePart = tuple[str | None, int | None, str | None]


def signature_from_parts(parts: Iterable[FramePart], *, frames: int = TOP_FRAMES) -> str | None:
    """A 16-hex-digit signature of the top ``frames`` usable parts, or None if there is none."""
    keys = []
    for module, offset, function in parts:
        if module and offset is not None:
            keys.append(f"{module}+{offset:x}")
        elif function:
            keys.append(function)
        if len(keys) == frames:
            break
    if not keys:
        return None
    return hashlib.sha256("|".join(keys).encode()).hexdigest()[:16]


def crash_signature(backtrace: Backtrace | None, *, frames: int = TOP_FRAMES) -> str | None:
    """The signature of a symbolised backtrace's crashing thread."""
    if backtrace is None or not backtrace.threads:
        return None
    crashed = next((t for t in backtrace.threads if t.crashed), backtrace.threads[0])
    return signature_from_parts(
        ((f.build_id or f.module_name, f.module_offset, f.function)
         for f in crashed.frames if not f.inline), frames=frames)
