"""Real crashes through the installed pipe door: stored, explained, recorded, findable."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.pipe_door import PipeDoor, wait_for_journal
from tests.support.stored_cores import check_stored_core

pytestmark = pytest.mark.e2e




def test_crash_without_daemon_is_handled_by_the_helper(pipe_door: PipeDoor, crasher: Path,
                                                       journald, tmp_path: Path) -> None:
    pid = pipe_door.crash([crasher, "threads", "8"])
    row = pipe_door.wait_for(pid)
    check_stored_core(row, crasher, tmp_path, threads=8)
    assert row.signal == 11 and row.comm == b"crasher"
    assert row.signature and row.backtrace_json and "crash_now" in row.backtrace_json
    path = Path(row.filename)
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0
    assert os.getxattr(path, "user.coredump.pid") == str(pid).encode()
    entry = wait_for_journal(pid, str(path))
    assert entry["COREDUMP_SIGNAL"] == "11"
    assert entry["COREDUMP_FILENAME"] == str(path)
    assert "Stack trace of thread" in entry["MESSAGE"] and "crash_now" in entry["MESSAGE"]


def test_crash_is_handed_off_to_the_daemon(pipe_door: PipeDoor, crasher: Path, tmp_path: Path) -> None:
    daemon = pipe_door.start_daemon()
    try:
        pid = pipe_door.crash([crasher, "segv"])
        row = pipe_door.wait_for(pid)
        again = pipe_door.wait_for(pipe_door.crash([crasher, "segv"]))
    finally:
        log = pipe_door.stop_daemon(daemon)
    assert daemon.returncode == 0, log
    check_stored_core(row, crasher, tmp_path, threads=1)
    # the daemon, not a helper fallback, recorded it (dmesg is rate-limited: not asked)
    records = {int(line.partition("recorded pid ")[2].split()[0]): line
               for line in log.splitlines() if "recorded pid " in line}
    assert pid in records and again.pid in records, log
    # the first crash's symbols were built by a child (its memory is not the daemon's); the
    # second one's addresses were all in the symbol cache, with the same backtrace
    assert "symbols in a child: ok" in records[pid]
    assert "symbols in a child" not in records[again.pid]
    assert again.backtrace_json and "crash_now" in again.backtrace_json
    assert _frames(again.backtrace_json) == _frames(row.backtrace_json)
    # through the helper's fast path: the kernel's raw arguments, parsed by the daemon
    wrapper = Path(json.loads((pipe_door.state / "install.json").read_text())["wrapper"])
    assert f"--handoff-socket {pipe_door.socket}" in wrapper.read_text()
    assert (row.pid, row.signal, row.comm, row.door) == (pid, 11, b"crasher", "pipe")
    assert row.context.tid == pid and row.uid == 0 and row.context.hostname


def _frames(backtrace_json: str | None) -> list[tuple[object, ...]]:
    """The crashed thread's frames without absolute addresses (ASLR moves them)."""
    threads = json.loads(backtrace_json or "{}")["threads"]
    crashed = next(t for t in threads if t["crashed"])
    return [(f["module"], f["module_offset"], f["function"], f["function_offset"], f["file"],
             f["line"], f["inline"]) for f in crashed["frames"]]


def test_setuid_crash_is_readable_by_root_only(pipe_door: PipeDoor, crasher: Path) -> None:
    # a directory user 65534 can reach (pytest's own temp dirs are root-only)
    public = Path(tempfile.mkdtemp(prefix="cdt-suid-", dir="/tmp"))
    try:
        os.chmod(public, 0o755)
        exe = public / "suid-crasher"
        exe.write_bytes(crasher.read_bytes())
        os.chmod(exe, 0o4755)
        pid = pipe_door.crash([exe, "segv"], user=65534, group=65534, cwd=public)
        row = pipe_door.wait_for(pid)
    finally:
        shutil.rmtree(public, ignore_errors=True)
    path = Path(row.filename)
    assert row.context.dumpable == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.stat().st_uid == 0
    acl = subprocess.run(["getfacl", "-cn", str(path)], capture_output=True, text=True).stdout
    assert "user:65534" not in acl


def test_keep_free_refusal_is_recorded(pipe_door: PipeDoor, crasher: Path) -> None:
    pipe_door.config.write_text(pipe_door.config.read_text().replace(
        "[Coredump]\n", "[Coredump]\nKeepFree=1000T\n"))
    pid = pipe_door.crash([crasher, "segv"])
    row = pipe_door.wait_for(pid)
    assert row.storage_state == "none"
    assert any("KeepFree" in note for note in row.notes)
    assert row.backtrace_json and "crash_now" in row.backtrace_json  # explained without the core


@pytest.mark.slow
def test_fifty_concurrent_crashes_are_all_recorded(pipe_door: PipeDoor, crasher: Path) -> None:
    pipe_door.config.write_text(pipe_door.config.read_text().replace(
        "[Coredumpd]\n", "[Coredumpd]\nRateLimitBurst=0\n"))  # every core kept
    daemon = pipe_door.start_daemon()
    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            pids = list(pool.map(lambda _: pipe_door.crash([crasher, "segv"]), range(50)))
        for pid in pids:
            pipe_door.wait_for(pid, timeout=300)
    finally:
        pipe_door.stop_daemon(daemon)
    rows = {r.pid: r for r in pipe_door.catalog_rows()}
    assert set(pids) <= set(rows)
    assert all(rows[p].storage_state == "present" for p in pids)


def test_repeats_of_a_signature_keep_metadata_and_backtrace_only(pipe_door: PipeDoor,
                                                                 crasher: Path) -> None:
    pipe_door.config.write_text(pipe_door.config.read_text().replace(
        "[Coredumpd]\n", "[Coredumpd]\nFullCoresPerSignature=1\n"))
    rows = [pipe_door.wait_for(pipe_door.crash([crasher, "segv"])) for _ in range(3)]
    assert [r.storage_state for r in rows] == ["present", "none", "none"]
    signature = rows[0].signature
    assert signature and all(r.signature == signature for r in rows)
    for row in rows[1:]:
        # decided before storage from the raw frames: the same signature as the symbolised one
        assert any(f"repeat of signature {signature}" in note for note in row.notes), row.notes
        assert row.backtrace_json and "crash_now" in row.backtrace_json, row.notes


@pytest.mark.parametrize("daemon", [True, False], ids=["daemon", "helper-alone"])
def test_rate_limit_at_the_pipe_door(pipe_door: PipeDoor, crasher: Path, daemon: bool) -> None:
    """Over the limit, the pipe door reads the core and drops it; the crash is still recorded.
    The helper alone (no daemon) knows the history from the catalog."""
    pipe_door.config.write_text(pipe_door.config.read_text().replace(
        "[Coredumpd]\n", "[Coredumpd]\nRateLimitBurst=2\nRateLimitIntervalSec=1h\n"))
    server = pipe_door.start_daemon() if daemon else None
    try:
        rows = [pipe_door.wait_for(pipe_door.crash([crasher, "segv"])) for _ in range(4)]
    finally:
        if server is not None:
            pipe_door.stop_daemon(server)
    assert [r.storage_state for r in rows] == ["present", "present", "none", "none"]
    for row in rows[2:]:
        assert any("rejected by rate limit" in n and "more than 2 per 3600s" in n
                   for n in row.notes), row.notes
        assert row.filename is None and row.backtrace_json is None
    assert not {r.door for r in rows} - {"pipe"}


def test_a_failed_hand_off_is_not_tried_again(pipe_door: PipeDoor, crasher: Path,
                                              tmp_path: Path) -> None:
    """A daemon socket that takes the connection and hangs up: the fast path fails once, the
    helper does not knock on the same socket again (each try may cost the hand-off timeouts
    with the task held) and runs the pipeline itself."""
    import socket
    import threading

    accepted: list[int] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    pipe_door.socket.parent.mkdir(parents=True, exist_ok=True)
    pipe_door.socket.unlink(missing_ok=True)
    server.bind(str(pipe_door.socket))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def hang_up() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        pid = pipe_door.crash([crasher, "segv"])
        row = pipe_door.wait_for(pid)
    finally:
        stop.set()
        thread.join()
        server.close()
        pipe_door.socket.unlink(missing_ok=True)
    check_stored_core(row, crasher, tmp_path, threads=1)
    assert len(accepted) == 1


def test_sighup_reloads_the_pipe_door_without_a_kernel_socket(pipe_door: PipeDoor,
                                                              crasher: Path) -> None:
    """Hand-offs only (the kernel socket cannot be bound): a reload still reaches them."""
    import signal
    import threading

    from tests.support.crash import wait_until

    text = pipe_door.config.read_text()
    kernel_line = next(line for line in text.splitlines() if line.startswith("KernelSocket="))
    pipe_door.config.write_text(text.replace(kernel_line, "KernelSocket=/proc/none/kernel.sock")
                                .replace("[Coredumpd]\n", "[Coredumpd]\nRateLimitBurst=1\n"
                                         "RateLimitIntervalSec=1h\n"))
    server = pipe_door.start_daemon()
    lines: list[str] = []
    assert server.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(
        line.decode(errors="replace") for line in server.stdout), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(lambda: any("serving hand-offs only" in line for line in lines), 30,
                   "the daemon to give up the kernel socket")
        rows = [pipe_door.wait_for(pipe_door.crash([crasher, "segv"])) for _ in range(2)]
        pipe_door.config.write_text(pipe_door.config.read_text().replace(
            "RateLimitBurst=1", "RateLimitBurst=0"))
        server.send_signal(signal.SIGHUP)
        wait_until(lambda: any("configuration reloaded" in line for line in lines), 30,
                   "the reload")
        rows.append(pipe_door.wait_for(pipe_door.crash([crasher, "segv"])))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        reader.join(timeout=10)
    assert [r.storage_state for r in rows] == ["present", "none", "present"], "".join(lines)
