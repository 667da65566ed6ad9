"""The hand-off wire: a context or the kernel's raw argv, with fds, crosses intact; anything
else is a WireError and the fds that came with it are closed."""

from __future__ import annotations

import os
import socket
import struct

import pytest

from coredumpd.runtime import _handed_context
from socket_server.wire import ACCEPTED, HEADER, MAGIC, WireError, receive_handoff, send_handoff

#: %P %I %u %g %s %t %c %d %F %h %e, with a comm that is not UTF-8
ARGV = [b"4242", b"4243", b"0", b"0", b"11", b"1700000000", b"0", b"1", b"3", b"host",
        b"cr\xffash"]


def _exchange(**kw) -> tuple[object, list[int]]:  # type: ignore[no-untyped-def]
    client, server = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r, w = os.pipe()
    with client, server:
        server.sendall(ACCEPTED)  # the answer waits in the buffer for send_handoff
        assert send_handoff(client, kw.pop("context", None), r, None, {"metadata": "pending"},
                            **kw)
        handoff = receive_handoff(server)
    os.close(r)
    os.close(w)
    return handoff, [handoff.core_fd]


def test_context_round_trip() -> None:
    handoff, fds = _exchange(context='{"pid": 7}')
    assert handoff.context_json == '{"pid": 7}' and handoff.argv is None  # type: ignore[attr-defined]
    assert handoff.extras == {"metadata": "pending"}  # type: ignore[attr-defined]
    for fd in fds:
        os.close(fd)


def test_argv_round_trip_keeps_every_byte() -> None:
    handoff, fds = _exchange(argv=ARGV)
    assert handoff.argv == ARGV and handoff.context_json is None  # type: ignore[attr-defined]
    context = _handed_context(handoff)  # type: ignore[arg-type]
    assert context is not None
    assert (context.pid, context.tid, context.signal, context.comm) == (4242, 4243, 11, b"cr\xffash")
    assert context.by_pidfd  # %F was given
    for fd in fds:
        os.close(fd)


def test_argv_the_helper_would_refuse_drops_the_core() -> None:
    handoff, fds = _exchange(argv=[b"not-a-pid", *ARGV[1:]])
    assert _handed_context(handoff) is None  # type: ignore[arg-type]
    handoff, more = _exchange(argv=[])
    assert _handed_context(handoff) is None  # type: ignore[arg-type]  (no %P: mandatory)
    for fd in fds + more:
        os.close(fd)


@pytest.mark.parametrize("body", [b'{"context": 5}', b'{"argv": [1, 2]}', b'{"argv": "x"}',
                                  b'{"context": "{}", "extras": [1]}', b"[]", b"not json"])
def test_malformed_messages_close_the_fds(body: bytes) -> None:
    client, server = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r, w = os.pipe()
    with client, server:
        client.sendmsg([HEADER.pack(MAGIC, len(body))],
                       [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", r))])
        client.sendall(body)
        before = set(os.listdir("/proc/self/fd"))
        with pytest.raises(WireError):
            receive_handoff(server)
        assert set(os.listdir("/proc/self/fd")) == before
    os.close(r)
    os.close(w)


def test_wrong_magic_is_refused() -> None:
    client, server = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r, w = os.pipe()
    with client, server:
        client.sendmsg([HEADER.pack(b"XXXX", 2)],
                       [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", r))])
        with pytest.raises(WireError, match="not a coredumpd hand-off"):
            receive_handoff(server)
    os.close(r)
    os.close(w)
