"""Storing real core streams: byte-identical round trips, limits, atomic publish under
SIGKILL, a full disk, KeepFree, xattrs, ACLs and sparse read-back."""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from coredumpd import storage
from coredumpd.context import CrashContext
from coredumpd.storage import (
    StorageLimits,
    StoredCore,
    core_filename,
    decompress_to,
    open_core,
    store_core,
)
from coredumpd.vacuum import STALE_TEMP_AGE, vacuum
from tests.support.compile import Compiler
from tests.support.crash import crash_to_core_file, wait_until
from tests.support.sysctl import crash_sysctls, e2e_unavailable_reason

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("write_path")]

REPO = Path(__file__).resolve().parents[3]
G = 1 << 30
BIG = StorageLimits(process_size_max=32 * G, external_size_max=32 * G, keep_free=0)

PROGRAM = r"""
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    /* 16 MiB of which only the first and last pages are touched: the rest are holes */
    size_t size = 16u << 20;
    unsigned char *p = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 0xA5, 4096);
    memcpy(p, "COREDUMPD-MARKER-BEGIN", 22);
    memcpy(p + size - 4096, "COREDUMPD-MARKER-END", 20);
    *(volatile int *)16 = 1;
    return 0;
}
"""


def expected_size(core: bytes) -> int:
    """max(p_offset + p_filesz) of an ELF64 little-endian core."""
    e_phoff, = struct.unpack_from("<Q", core, 0x20)
    e_phentsize, e_phnum = struct.unpack_from("<HH", core, 0x36)
    end = 0
    for i in range(e_phnum):
        _, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", core, e_phoff + i * e_phentsize)
        end = max(end, p_offset + p_filesz)
    return end


@pytest.fixture(scope="module")
def real_core(compile_c: Compiler, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A kernel-written core (file mode), as the bytes a pipe would carry (holes as zeros)."""
    reason = e2e_unavailable_reason()
    if reason:
        pytest.skip(reason)
    exe = compile_c(PROGRAM, name="holes")
    with crash_sysctls() as sysctls:
        crash = crash_to_core_file(sysctls, exe, tmp_path_factory.mktemp("core"))
    data = crash.core.read_bytes()
    assert len(data) == expected_size(data)
    return data


def make_context(**kw: object) -> CrashContext:
    base: dict[str, object] = dict(
        pid=4242, tid=4242, uid=1000, gid=1000, signal=11, timestamp=1_795_433_691_123_456,
        rlimit=(1 << 64) - 1, dumpable=1, hostname=b"host", comm=b"holes", exe=b"/tmp/holes",
        boot_id="62ac89afada247dc84e003c0548fd64c", door="pipe")
    base.update(kw)
    return CrashContext(**base)  # type: ignore[arg-type]


class Feeder:
    """A pipe whose writer thread pushes ``data`` and closes; ``done`` tells if it all went."""

    def __init__(self, data: bytes) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.data = data
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with open(self.write_fd, "wb", buffering=0) as f:
                f.write(self.data)
        except BrokenPipeError:
            pass

    def drained(self) -> bool:
        self.thread.join(timeout=30)
        return not self.thread.is_alive()

    def close(self) -> None:
        os.close(self.read_fd)


def store_stream(directory: Path, data: bytes, context: CrashContext | None = None,
                 head_size: int = 8192, **kw: object) -> tuple[StoredCore, Feeder]:
    context = context or make_context()
    feeder = Feeder(data[head_size:])
    kw.setdefault("limits", BIG)
    kw.setdefault("expected", expected_size(data) if data[:4] == b"\x7fELF" else None)
    try:
        stored = store_core(directory, context, data[:head_size], feeder.read_fd, **kw)  # type: ignore[arg-type]
        assert feeder.drained(), "the stream was not drained"
    finally:
        feeder.close()
    return stored, feeder


def read_back(path: Path) -> bytes:
    with open_core(path) as f:
        return f.read()


def final_names(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith("core."))


# -- round trips ----------------------------------------------------------------------------


def test_real_core_round_trip(tmp_path: Path, real_core: bytes) -> None:
    calls: list[str] = []
    stored, _ = store_stream(tmp_path, real_core, on_received=lambda: calls.append("eof"))
    assert calls == ["eof"]
    assert stored.state == "present" and stored.reason is None
    assert stored.received == stored.stored_bytes == stored.expected == len(real_core)
    assert stored.path == tmp_path / core_filename(make_context(), compress=True)
    assert read_back(stored.path) == real_core
    st = stored.path.stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o640, 0, 0)
    assert stored.disk_size == st.st_blocks * 512
    assert st.st_size < len(real_core) // 50  # zero pages cost (almost) nothing
    assert os.listdir(tmp_path) == [stored.path.name]  # no temp file left behind


def test_uncompressed_storage_is_sparse_and_identical(tmp_path: Path, real_core: bytes) -> None:
    limits = StorageLimits(32 * G, 32 * G, compress=False, keep_free=0)
    stored, _ = store_stream(tmp_path, real_core, limits=limits)
    assert stored.path is not None and not stored.path.name.endswith(".zst")
    assert stored.path.read_bytes() == real_core
    assert stored.disk_size < len(real_core) // 4


def test_file_object_source(tmp_path: Path, real_core: bytes) -> None:
    stored = store_core(tmp_path, make_context(), real_core[:100], io.BytesIO(real_core[100:]),
                        expected=len(real_core), limits=BIG)
    assert stored.path is not None and read_back(stored.path) == real_core


def test_on_received_fires_before_fsync(tmp_path: Path, real_core: bytes,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store_stream(tmp_path, real_core, on_received=lambda: events.append("eof"))
    assert events[0] == "eof" and events.count("eof") == 1 and "fsync" in events


def test_same_name_is_never_clobbered(tmp_path: Path, real_core: bytes) -> None:
    first, _ = store_stream(tmp_path, real_core)
    second, _ = store_stream(tmp_path, real_core[: len(real_core) // 2] + b"x")
    assert first.path is not None and second.path is not None and first.path != second.path
    assert second.path.name == first.path.name.replace(".zst", "~1.zst")
    assert read_back(first.path) == real_core


# -- limits ---------------------------------------------------------------------------------


def test_process_size_max_truncates_and_drains(tmp_path: Path, real_core: bytes) -> None:
    limit = 64 << 10
    stored, _ = store_stream(tmp_path, real_core, limits=StorageLimits(limit, limit, keep_free=0))
    assert stored.state == "truncated"
    assert stored.reason == f"core larger than ProcessSizeMax={limit}"
    assert stored.received == len(real_core) and stored.stored_bytes == limit
    assert stored.path is not None and read_back(stored.path) == real_core[:limit]


def test_rlimit_core_truncates(tmp_path: Path, real_core: bytes) -> None:
    stored, _ = store_stream(tmp_path, real_core, rlimit=1 << 20)
    assert (stored.state, stored.stored_bytes) == ("truncated", 1 << 20)
    assert stored.reason == "core larger than RLIMIT_CORE=1048576"


def test_rlimit_below_a_page_stores_nothing(tmp_path: Path, real_core: bytes) -> None:
    calls: list[int] = []
    stored, _ = store_stream(tmp_path, real_core, rlimit=1000, on_received=lambda: calls.append(1))
    assert (stored.state, stored.path, stored.received) == ("none", None, len(real_core))
    assert "RLIMIT_CORE=1000" in (stored.reason or "") and calls == [1]
    assert os.listdir(tmp_path) == []


def test_external_size_max_checks_the_compressed_size(tmp_path: Path, real_core: bytes) -> None:
    random_core = real_core[:8192] + os.urandom(2 << 20)
    stored, _ = store_stream(tmp_path, random_core, expected=None,
                             limits=StorageLimits(32 * G, 1 << 20, keep_free=0))
    assert (stored.state, stored.path, stored.received) == ("none", None, len(random_core))
    assert (stored.reason or "").startswith("core larger than ExternalSizeMax=1048576")
    assert os.listdir(tmp_path) == []
    # the same limit on a well-compressible core keeps all of it (systemd's semantics)
    stored, _ = store_stream(tmp_path, real_core, limits=StorageLimits(32 * G, 1 << 20, keep_free=0))
    assert stored.state == "present"


def test_cut_stream_is_truncated(tmp_path: Path, real_core: bytes) -> None:
    cut = real_core[: len(real_core) - 12345]
    stored, _ = store_stream(tmp_path, cut, expected=len(real_core))
    assert stored.state == "truncated"
    assert stored.reason == f"stream ended after {len(cut)} of {len(real_core)} bytes"
    assert stored.path is not None and read_back(stored.path) == cut


def test_keep_free_refuses_and_drains(tmp_path: Path, real_core: bytes) -> None:
    limits = StorageLimits(32 * G, 32 * G, keep_free=1 << 60)
    stored, _ = store_stream(tmp_path, real_core, limits=limits)
    assert (stored.state, stored.path, stored.received) == ("none", None, len(real_core))
    assert (stored.reason or "").startswith("over KeepFree (")
    assert os.listdir(tmp_path) == []


def test_missing_directory_gives_a_reason(tmp_path: Path, real_core: bytes) -> None:
    stored, _ = store_stream(tmp_path / "absent", real_core)
    assert stored.state == "none" and stored.received == len(real_core)
    assert "absent" in (stored.reason or "")


# -- metadata on the file -------------------------------------------------------------------


def getfacl(path: Path) -> list[str]:
    out = subprocess.run(["getfacl", "-cn", str(path)], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line and not line.startswith("#")]


def test_xattrs_readable_with_getfattr(tmp_path: Path, real_core: bytes) -> None:
    context = make_context(comm=b"a/b\n\x1b", thread_name=b"worker")
    stored, _ = store_stream(tmp_path, real_core, context=context)
    assert stored.path is not None
    out = subprocess.run(["getfattr", "--absolute-names", "-d", "-m", "^user\\.coredump\\.",
                          "-e", "hex", str(stored.path)], capture_output=True, text=True, check=True)
    found = {}
    for line in out.stdout.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            found[key] = bytes.fromhex(value.removeprefix("0x"))
    assert found == context.xattrs()
    assert found["user.coredump.pid"] == b"4242" and found["user.coredump.comm"] == b"a/b\n\x1b"


def test_acl_only_for_dumpable_regular_user(tmp_path: Path, real_core: bytes) -> None:
    granted, _ = store_stream(tmp_path, real_core, context=make_context(dumpable=1))
    assert granted.path is not None
    assert getfacl(granted.path) == ["user::rw-", "user:1000:r--", "group::r--", "mask::r--",
                                     "other::---"]
    assert granted.path.stat().st_mode & 0o777 == 0o640
    for kw in (dict(dumpable=2, pid=1), dict(dumpable=0, pid=2), dict(uid=0, pid=3)):
        stored, _ = store_stream(tmp_path, real_core[:9000], context=make_context(**kw))
        assert stored.path is not None
        assert getfacl(stored.path) == ["user::rw-", "group::r--", "other::---"], kw


def test_acl_refused_when_auxv_says_setuid(tmp_path: Path, real_core: bytes) -> None:
    auxv = struct.pack("<QQQQQQ", 11, 1000, 12, 0, 0, 0)  # AT_UID 1000, AT_EUID 0
    stored, _ = store_stream(tmp_path, real_core[:9000], context=make_context(proc_auxv=auxv))
    assert stored.path is not None and "user:1000:r--" not in getfacl(stored.path)


# -- read back ------------------------------------------------------------------------------


def test_sparse_decompress(tmp_path: Path, real_core: bytes) -> None:
    stored, _ = store_stream(tmp_path, real_core)
    assert stored.path is not None
    out = tmp_path / "out" / "core"
    out.parent.mkdir()
    assert decompress_to(stored.path, out) == len(real_core)
    assert out.read_bytes() == real_core
    assert out.stat().st_blocks * 512 < len(real_core) // 4
    dense = tmp_path / "out" / "dense"
    assert decompress_to(stored.path, dense, sparse=False) == len(real_core)
    assert dense.stat().st_blocks * 512 >= len(real_core)


def test_trailing_zeros_keep_their_length(tmp_path: Path) -> None:
    data = b"\x7fELF-not-really" + bytes(3 << 20)
    stored, _ = store_stream(tmp_path, data, expected=None, head_size=10)
    assert stored.path is not None
    out = tmp_path / "out"
    assert decompress_to(stored.path, out) == len(data) and out.read_bytes() == data


# -- atomicity ------------------------------------------------------------------------------

KILLED_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from coredumpd import storage
    from coredumpd.context import CrashContext
    storage.USE_O_TMPFILE = sys.argv[2] == "tmpfile"
    context = CrashContext(pid=7, uid=0, gid=0, signal=11, timestamp=1, comm=b"victim",
                           boot_id="0" * 32)
    limits = storage.StorageLimits(1 << 40, 1 << 40, keep_free=0)
    storage.store_core(Path(sys.argv[1]), context, b"", 0, expected=None, limits=limits)
    print("finished")
""")


def temp_fd_open(pid: int, directory: Path) -> bool:
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(directory) + "/"):
                return True
        except FileNotFoundError:
            continue
    return False


@pytest.mark.parametrize("mode", ["tmpfile", "named"])
def test_sigkill_mid_store_leaves_no_final_file(tmp_path: Path, mode: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path), mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO)
    assert proc.stdin is not None
    try:
        proc.stdin.write(os.urandom(4 << 20))  # incompressible: reaches the disk at once
        proc.stdin.flush()
        wait_until(lambda: temp_fd_open(proc.pid, tmp_path), what="the temp file")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert final_names(tmp_path) == []
    leftovers = os.listdir(tmp_path)
    if mode == "tmpfile":
        assert leftovers == []
    else:
        assert len(leftovers) == 1 and leftovers[0].startswith(".#core.victim.")
        old = os.stat(tmp_path / leftovers[0]).st_mtime - STALE_TEMP_AGE - 10
        os.utime(tmp_path / leftovers[0], (old, old))
        assert vacuum(tmp_path, max_use=0, keep_free=0) == [tmp_path / leftovers[0]]
        assert os.listdir(tmp_path) == []


def test_named_temp_fallback_publishes(tmp_path: Path, real_core: bytes,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "USE_O_TMPFILE", False)
    stored, _ = store_stream(tmp_path, real_core)
    assert stored.path is not None and read_back(stored.path) == real_core
    assert os.listdir(tmp_path) == [stored.path.name]


# -- a full disk ----------------------------------------------------------------------------

DISK_FULL = textwrap.dedent("""
    import json, os, sys, threading
    from pathlib import Path
    from coredumpd import storage
    from coredumpd.context import CrashContext
    directory = Path(sys.argv[1])
    data = os.urandom(4 << 20)
    r, w = os.pipe()
    def feed():
        with open(w, "wb", buffering=0) as f:
            f.write(data[4096:])
    t = threading.Thread(target=feed)
    t.start()
    context = CrashContext(pid=9, uid=0, gid=0, signal=11, timestamp=1, comm=b"big",
                           boot_id="0" * 32)
    limits = storage.StorageLimits(1 << 40, 1 << 40, keep_free=0)
    stored = storage.store_core(directory, context, data[:4096], r, expected=len(data) + 1,
                                limits=limits)
    t.join(10)
    print(json.dumps({"state": stored.state, "reason": stored.reason, "path": stored.path,
                      "received": stored.received, "drained": not t.is_alive(),
                      "left": os.listdir(directory), "free": os.statvfs(directory).f_bfree}))
""")


def test_disk_full_gives_state_none_and_drains(tiny_tmpfs: tuple[list[str], Path]) -> None:
    prefix, directory = tiny_tmpfs
    out = subprocess.run([*prefix, sys.executable, "-c", DISK_FULL, str(directory)],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result == {"state": "none", "reason": "disk full", "path": None,
                      "received": 4 << 20, "drained": True, "left": [],
                      "free": result["free"]}
    assert result["free"] > 0  # the space was given back
    assert os.listdir(directory) == []  # the mount never leaked out of the namespace
