"""Test hooks of the kernel socket server: off unless their environment variable is set.

- ``COREDUMPD_TEST_ACK=small|large|unknown|conflicting|spare|none``: answer every ``@@`` request
  with that malformed ack instead of ours, and report what the kernel answered;
- ``COREDUMPD_TEST_STALL_SEC=N``: a dump worker waits N seconds (or until the watchdog fired)
  before reading the stream, so the kernel blocks on the full socket;
- ``COREDUMPD_TEST_REPORT=FILE``: where reports go, one JSON object per line.

They exist for the e2e tests (research/kernel-interfaces.md §6 asks for exactly this); a
production daemon's environment does not set them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping

from socket_server.coredump_proto import CoredumpFlag, CoredumpRequest, build_ack

log = logging.getLogger(__name__)

ENV_ACK = "COREDUMPD_TEST_ACK"
ENV_STALL = "COREDUMPD_TEST_STALL_SEC"
ENV_REPORT = "COREDUMPD_TEST_REPORT"

_K, _W = CoredumpFlag.KERNEL, CoredumpFlag.WAIT


def malformed_acks(req: CoredumpRequest) -> dict[str, bytes]:
    """Each kind of bad ack, and (in the comment) the mark the kernel answers it with."""
    return {
        "small": build_ack(_K | _W, size=8),  # MINSIZE
        "large": build_ack(_K | _W, size=req.size_ack + 4096),  # MAXSIZE
        "unknown": build_ack(_K | _W | (1 << 63)),  # UNSUPPORTED
        "spare": build_ack(_K | _W, spare=1),  # UNSUPPORTED
        "conflicting": build_ack(_K | CoredumpFlag.REJECT | _W),  # CONFLICTING
        "none": build_ack(_W),  # CONFLICTING: no action at all
    }


class TestHooks:
    __test__ = False  # not a pytest class

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.ack = environ.get(ENV_ACK) or None
        stall = environ.get(ENV_STALL)
        self.stall_sec = float(stall) if stall else None
        self.report_path = environ.get(ENV_REPORT) or None
        self._lock = threading.Lock()
        if self.ack or self.stall_sec or self.report_path:
            log.warning("TEST HOOKS ACTIVE: ack=%s stall=%s report=%s", self.ack, self.stall_sec,
                        self.report_path)

    def malformed_ack(self, req: CoredumpRequest) -> bytes | None:
        if self.ack is None:
            return None
        acks = malformed_acks(req)
        if self.ack not in acks:
            raise ValueError(f"{ENV_ACK}={self.ack!r}: use one of {', '.join(acks)}")
        return acks[self.ack]

    def stall(self, *, released_or_killed: threading.Event) -> None:
        if self.stall_sec:
            released_or_killed.wait(self.stall_sec)

    def report(self, record: dict) -> None:
        log.info("test hook report: %s", record)
        if self.report_path is None:
            return
        with self._lock, open(self.report_path, "a") as f:
            f.write(json.dumps(record) + "\n")
