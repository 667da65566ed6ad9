"""The @@ protocol's bytes, as measured on 6.18 (research/kernel-interfaces.md §1)."""

from __future__ import annotations

import pytest

from socket_server.coredump_proto import (
    CoredumpFlag,
    CoredumpMark,
    ProtocolError,
    build_ack,
    choose_ack,
    parse_mark,
    parse_request,
    parse_request_size,
)
from socket_server.test_hooks import TestHooks, malformed_acks

REQ_6_18 = bytes.fromhex("10000000" "10000000" "0f00000000000000")


def test_request_of_6_18() -> None:
    req = parse_request(REQ_6_18)
    assert (req.size, req.size_ack) == (16, 16)
    assert req.mask == CoredumpFlag.KERNEL | CoredumpFlag.USERSPACE | CoredumpFlag.REJECT | CoredumpFlag.WAIT


def test_longer_request_keeps_the_known_part() -> None:
    data = (24).to_bytes(4, "little") + REQ_6_18[4:] + b"\xff" * 8
    assert parse_request_size(data[:4]) == 24
    assert parse_request(data).mask == 0xF


@pytest.mark.parametrize("data", [b"", b"\x10\x00", (8).to_bytes(4, "little") + bytes(12),
                                  (1 << 20).to_bytes(4, "little") + bytes(12), REQ_6_18[:12],
                                  REQ_6_18[:4] + (8).to_bytes(4, "little") + REQ_6_18[8:]])
def test_bad_requests_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_request(data)


def test_acks_are_16_bytes_little_endian() -> None:
    assert build_ack(CoredumpFlag.KERNEL | CoredumpFlag.WAIT) == bytes.fromhex(
        "10000000" "00000000" "0900000000000000")
    assert build_ack(CoredumpFlag.REJECT) == bytes.fromhex("10000000" "00000000" "0400000000000000")


def test_choose_ack_refuses_what_the_kernel_does_not_offer() -> None:
    req = parse_request(REQ_6_18[:8] + (1).to_bytes(8, "little"))
    assert choose_ack(req, CoredumpFlag.KERNEL) == CoredumpFlag.KERNEL
    with pytest.raises(ProtocolError):
        choose_ack(req, CoredumpFlag.KERNEL | CoredumpFlag.WAIT)


@pytest.mark.parametrize("value", range(5))
def test_every_mark(value: int) -> None:
    assert parse_mark(value.to_bytes(4, "little")) == CoredumpMark(value)


def test_unknown_mark_and_short_mark() -> None:
    assert parse_mark((9).to_bytes(4, "little")) == 9
    with pytest.raises(ProtocolError):
        parse_mark(b"\x00")  # the uapi comment's "single byte" is wrong: it is a u32


def test_malformed_acks_break_exactly_one_rule() -> None:
    acks = malformed_acks(parse_request(REQ_6_18))
    assert len(acks["small"]) == 8 and int.from_bytes(acks["small"][:4], "little") == 8
    assert len(acks["large"]) == 16 + 4096
    assert int.from_bytes(acks["large"][:4], "little") == 16 + 4096
    assert acks["unknown"][8:] == ((1 << 63) | 9).to_bytes(8, "little")
    assert acks["spare"][4:8] == b"\x01\x00\x00\x00"
    assert acks["conflicting"][8:] == (1 | 4 | 8).to_bytes(8, "little")
    assert acks["none"][8:] == (8).to_bytes(8, "little")


def test_hooks_are_off_by_default() -> None:
    hooks = TestHooks({})
    assert hooks.malformed_ack(parse_request(REQ_6_18)) is None
    assert hooks.stall_sec is None
    with pytest.raises(ValueError):
        TestHooks({"COREDUMPD_TEST_ACK": "bogus"}).malformed_ack(parse_request(REQ_6_18))
