"""The crash-sysctl lock for tests: the product's own (coredumpd.sysctl), plus the e2e gate."""

from coredumpd.sysctl import CrashSysctls, crash_sysctls
from coredumpd.sysctl import crash_sysctls_unavailable_reason as e2e_unavailable_reason

__all__ = ["CrashSysctls", "crash_sysctls", "e2e_unavailable_reason"]
