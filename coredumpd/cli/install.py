"""``coredumpd install`` / ``coredumpd uninstall``: become the kernel's core handler, and back."""

from __future__ import annotations

import argparse
from pathlib import Path

from coredumpd.cli.render import error


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("install", help="set core_pattern to coredumpd's socket or helper")
    parser.add_argument("--mode", choices=("auto", "pipe", "socket"), default="auto")
    parser.add_argument("--state-dir", type=Path, help="state directory (default from the configuration)")
    parser.add_argument("--config", type=Path, help="configuration file the helper reads")
    parser.add_argument("--helper-dir", type=Path, help="where to write the helper wrapper "
                        "(default /usr/local/lib/coredumpd)")
    parser.add_argument("--no-persist", action="store_true",
                        help="do not write /etc/sysctl.d (settings last until reboot)")
    parser.set_defaults(func=run_install)
    parser = subparsers.add_parser("uninstall", help="put back the previous core_pattern")
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--config", type=Path)
    parser.set_defaults(func=run_uninstall)


def _state_dir(args: argparse.Namespace) -> Path:
    from coredumpd.config import load_config_for

    return load_config_for(args.config, args.state_dir).state_directory


def _kernel_socket(args: argparse.Namespace) -> Path:
    from coredumpd.config import load_config_for

    return load_config_for(args.config, args.state_dir).kernel_socket


def run_install(args: argparse.Namespace) -> int:
    from coredumpd.errors import CoredumpError
    from coredumpd.install import DEFAULT_HELPER_DIR, InstallError, install

    try:
        done = install(state_dir=_state_dir(args), mode=args.mode, config=args.config,
                       helper_dir=args.helper_dir or DEFAULT_HELPER_DIR, persist=not args.no_persist,
                       kernel_socket=_kernel_socket(args))
    except (InstallError, CoredumpError, OSError) as err:
        error(str(err))
        return 1
    print(f"core_pattern = {done.pattern}")
    print(f"door = {done.mode}" + (f" (socket not used: {done.reason})" if done.reason else ""))
    print(f"previous core_pattern = {done.previous['core_pattern']} (restored by coredumpd uninstall)")
    return 0


def run_uninstall(args: argparse.Namespace) -> int:
    from coredumpd.errors import CoredumpError
    from coredumpd.install import InstallError, uninstall

    try:
        restored = uninstall(state_dir=_state_dir(args))
    except (InstallError, CoredumpError, OSError) as err:
        error(str(err))
        return 1
    print(f"core_pattern = {restored.get('core_pattern')}")
    return 0
