"""Policy at the kernel door: which crashes get their core taken, decided before the ack.

In ``@@`` mode the server answers before the kernel writes a byte, so a crash loop costs the
kernel a connect and 16 bytes each way, and the task is released at once. What is known then:
the executable, the cgroup (unit), the uid, the dumpability, the recent history. The signal is
not (``PIDFD_INFO_COREDUMP_SIGNAL`` is post-6.18), and neither is the core's size: size limits
are applied while storing (truncation), not here.

Rate limits are token buckets, one per executable and one per unit: ``burst`` tokens, refilled
at ``burst / interval`` per second. A crash that finds an empty bucket is rejected, and still
recorded by the caller (``storage_state`` "none", the reason as a note), so counts stay exact.

After the live backtrace, :class:`SignatureLimit` says whether a crash with that signature still
gets a full core (the first K of each signature) or only metadata and backtrace.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from coredumpd.config import Config

#: buckets kept per kind; the least recently used are dropped beyond this (a full bucket and a
#: forgotten one behave the same, so only keys under pressure matter)
MAX_BUCKETS = 4096


@dataclass(frozen=True)
class CrashFacts:
    """What is known about a crash before the ack. ``exe``/``unit`` are the kernel's bytes;
    ``uid`` is the real uid; ``None`` = not known."""

    exe: bytes | None
    unit: bytes | None
    uid: int | None
    signal: int | None = None
    comm: bytes | None = None


@dataclass(frozen=True)
class Verdict:
    """``take``: ask the kernel for the core; otherwise ``reason`` says why not."""

    take: bool
    reason: str | None = None


TAKE = Verdict(True)


class TokenBucket:
    """``burst`` tokens, refilled continuously at ``burst / interval`` per second (monotonic)."""

    __slots__ = ("burst", "rate", "tokens", "stamp")

    def __init__(self, burst: int, interval: float, now: float) -> None:
        self.burst = burst
        self.rate = burst / interval
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> bool:
        if now > self.stamp:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimit:
    """Token buckets of one kind (per executable, per unit), keyed by bytes."""

    def __init__(self, what: str, burst: int, interval: float) -> None:
        self.what = what
        self.burst = burst
        self.interval = interval
        self._buckets: OrderedDict[bytes, TokenBucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.burst > 0

    def take(self, key: bytes | None, now: float) -> bool:
        if not self.enabled or key is None:
            return True
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.burst, self.interval, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)

    def describe(self, key: bytes) -> str:
        return (f"{self.what} {key.decode(errors='backslashreplace')}: more than {self.burst} "
                f"per {self.interval:g}s")


class Policy:
    """The door's decisions; thread-safe. Rebuilt on reload (buckets start full again)."""

    def __init__(self, config: Config, *, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self._clock = clock
        self._lock = threading.Lock()
        interval = config.rate_limit_interval_sec
        self.per_exe = RateLimit("executable", config.rate_limit_burst, interval)
        self.per_unit = RateLimit("unit", config.unit_rate_limit_burst, interval)

    def decide(self, facts: CrashFacts) -> Verdict:
        """Take the core, or reject it (rate limits). Consumes a token of every limit passed,
        so a crash rejected per unit still used its executable's token (it did happen)."""
        with self._lock:
            now = self._clock()
            exe_ok = self.per_exe.take(facts.exe, now)
            unit_ok = self.per_unit.take(facts.unit, now)
        if not exe_ok:
            assert facts.exe is not None
            return Verdict(False, "rejected by rate limit (" + self.per_exe.describe(facts.exe) + ")")
        if not unit_ok:
            assert facts.unit is not None
            return Verdict(False, "rejected by rate limit (" + self.per_unit.describe(facts.unit) + ")")
        return TAKE

    def seed(self, history: Iterable[tuple[int, bytes | None, bytes | None]], *,
             now_us: int | None = None) -> int:
        """Replay recent crashes ``(timestamp µs, exe, unit)``, oldest first, so a restarted
        daemon does not hand a crash loop a fresh burst. Returns how many were replayed."""
        wall = time.time_ns() // 1000 if now_us is None else now_us
        mono = self._clock()
        count = 0
        with self._lock:
            for timestamp, exe, unit in history:
                at = mono - max(0, wall - timestamp) / 1e6
                self.per_exe.take(exe, at)
                self.per_unit.take(unit, at)
                count += 1
        return count


class SignatureLimit:
    """"A full core for the first K crashes of each signature": :meth:`full_core` counts."""

    def __init__(self, first: int | None) -> None:
        self.first = first
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.first is not None

    def seed(self, counts: dict[str, int]) -> None:
        """Full cores already kept per signature (from the catalog)."""
        with self._lock:
            for signature, n in counts.items():
                self._seen[signature] = max(self._seen.get(signature, 0), n)

    def full_core(self, signature: str | None) -> bool:
        """True if a crash with ``signature`` still gets its full core (and count it)."""
        if self.first is None or signature is None:
            return True
        with self._lock:
            n = self._seen.get(signature, 0)
            if n >= self.first:
                return False
            self._seen[signature] = n + 1
            return True
