"""The rate limits' memory: a :class:`~coredumpd.policy.Policy` seeded with the recent crashes
of the state directory's catalog (read-only), so a restart does not hand a crash loop a fresh
burst. I/O apart from the policy's pure decisions; used by the kernel socket's door process
and by the pipeline (pipe door)."""

from __future__ import annotations

import logging
import time

from coredumpd.catalog import Catalog
from coredumpd.config import Config
from coredumpd.policy import Policy

log = logging.getLogger(__name__)


def build_policy(config: Config, catalog: Catalog | None = None) -> Policy:
    """A policy with the recent history from the state directory's catalog (``catalog`` when
    the caller has it open, else opened read-only), so a restart does not hand a crash loop a
    fresh burst. Failures only cost the history."""
    policy = Policy(config)
    path = config.catalog_path
    if not (policy.per_exe.enabled or policy.per_unit.enabled) or \
            (catalog is None and not path.exists()):
        return policy
    since = time.time_ns() // 1000 - int(config.rate_limit_interval_sec * 1e6)

    def seed(source: Catalog) -> None:
        rows = source.query(since_us=since, newest_first=False, details=False)
        policy.seed((row.timestamp, row.exe, None) for row in rows)

    try:
        if catalog is not None:
            seed(catalog)
        else:
            with Catalog.open_readonly(path) as readonly:
                seed(readonly)
    except Exception as err:  # noqa: BLE001 - optional
        log.warning("failed to read the recent crashes for the rate limits, ignoring: %s", err)
    return policy
