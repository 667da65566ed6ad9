"""Kernel pipe entry (filled in by the pipeline issue)."""

import sys


def main() -> int:
    return 0


if __name__ == "__main__":
    sys.exit(main())
