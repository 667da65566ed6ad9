"""The door channel: messages and fds cross intact; anything else is a clear ChannelError."""

from __future__ import annotations

import os
import socket

import pytest

from socket_server.door_channel import (
    MAX_MESSAGE,
    ChannelError,
    channel_pair,
    receive_event,
    send_event,
)


def test_event_with_fds_round_trip() -> None:
    ours, theirs = channel_pair()
    r, w = os.pipe()
    try:
        send_event(theirs, "take", {"context": "{}", "door_ns": 1234, "ns_local": True}, (r, w))
        event = receive_event(ours)
        assert event is not None
        assert event.event == "take" and event.body == {"context": "{}", "door_ns": 1234,
                                                        "ns_local": True}
        assert len(event.fds) == 2 and set(event.fds).isdisjoint({r, w})
        os.write(event.fds[1], b"x")  # the received fds are the same pipe
        assert os.read(r, 1) == b"x"
        for fd in event.fds:
            os.close(fd)
    finally:
        for fd in (r, w):
            os.close(fd)
        ours.close()
        theirs.close()


def test_messages_keep_their_boundaries() -> None:
    ours, theirs = channel_pair()
    with ours, theirs:
        for n in range(3):
            send_event(theirs, "count", {"counter": f"c{n}"})
        assert [receive_event(ours).body["counter"] for _ in range(3)] == ["c0", "c1", "c2"]  # type: ignore[union-attr]


def test_end_of_channel_is_none() -> None:
    ours, theirs = channel_pair()
    theirs.close()
    with ours:
        assert receive_event(ours) is None


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'{"no": "event"}', b'{"event": 5}'])
def test_garbage_is_a_channel_error_and_its_fds_are_closed(raw: bytes) -> None:
    ours, theirs = channel_pair()
    r, w = os.pipe()
    with ours, theirs:
        theirs.sendmsg([raw], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, r.to_bytes(4, "little"))])
        before = set(os.listdir("/proc/self/fd"))
        with pytest.raises(ChannelError):
            receive_event(ours)
        assert set(os.listdir("/proc/self/fd")) == before  # the received copy was closed
    os.close(r)
    os.close(w)


def test_oversized_message_is_refused_before_sending() -> None:
    ours, theirs = channel_pair()
    with ours, theirs, pytest.raises(ChannelError):
        send_event(theirs, "record", {"context": "x" * MAX_MESSAGE})
