"""Rate limits and the per-signature limit, with a fake clock."""

from __future__ import annotations

import dataclasses

from coredumpd.config import Config
from coredumpd.policy import CrashFacts, Policy, SignatureLimit, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def facts(exe: bytes = b"/bin/crash", unit: bytes | None = None) -> CrashFacts:
    return CrashFacts(exe=exe, unit=unit, uid=0)


def policy(clock: Clock, **kw) -> Policy:  # type: ignore[no-untyped-def]
    return Policy(dataclasses.replace(Config(), **kw), clock=clock)


def test_token_bucket_refills_continuously() -> None:
    bucket = TokenBucket(2, 10.0, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0) and not bucket.take(0.0)
    assert not bucket.take(4.9)
    assert bucket.take(5.0)  # 2 tokens / 10 s: one every 5 s
    assert not bucket.take(5.0)


def test_burst_then_reject_per_executable() -> None:
    clock = Clock()
    p = policy(clock, rate_limit_burst=3, rate_limit_interval_sec=60.0, unit_rate_limit_burst=0)
    verdicts = [p.decide(facts()) for _ in range(5)]
    assert [v.take for v in verdicts] == [True, True, True, False, False]
    assert "rejected by rate limit (executable /bin/crash: more than 3 per 60s)" == verdicts[3].reason
    assert p.decide(facts(b"/bin/other")).take  # another executable has its own bucket
    clock.now += 20.0
    assert p.decide(facts()).take


def test_unit_limit_spans_executables() -> None:
    p = policy(Clock(), rate_limit_burst=0, unit_rate_limit_burst=2)
    unit = b"foo.service"
    assert p.decide(facts(b"/a", unit)).take and p.decide(facts(b"/b", unit)).take
    verdict = p.decide(facts(b"/c", unit))
    assert not verdict.take and "unit foo.service" in (verdict.reason or "")
    assert p.decide(facts(b"/c", None)).take


def test_zero_burst_means_unlimited() -> None:
    p = policy(Clock(), rate_limit_burst=0, unit_rate_limit_burst=0)
    assert all(p.decide(facts()).take for _ in range(1000))


def test_seed_replays_recent_history() -> None:
    clock = Clock()
    p = policy(clock, rate_limit_burst=2, rate_limit_interval_sec=3600.0)
    now_us = 10**15
    assert p.seed([(now_us - 1_000_000, b"/bin/crash", None)] * 2, now_us=now_us) == 2
    assert not p.decide(facts()).take
    assert p.decide(facts(b"/bin/fresh")).take


def test_signature_limit() -> None:
    limit = SignatureLimit(2)
    assert [limit.full_core("abc") for _ in range(3)] == [True, True, False]
    assert limit.full_core(None) and limit.full_core("other")
    unlimited = SignatureLimit(None)
    assert all(unlimited.full_core("abc") for _ in range(10))
    seeded = SignatureLimit(1)
    seeded.seed({"abc": 1})
    assert not seeded.full_core("abc")
