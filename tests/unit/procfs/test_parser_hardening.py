"""Inputs the procfs fuzzer (tests/fuzz/test_fuzz_procfs.py) found escaping as non-ProcfsError
exceptions, each pinned here, plus the guarantees of the faster maps parser."""

import pytest

from procfs.errors import ParseError
from procfs.parse.links import parse_link
from procfs.parse.maps import Mapping, Perm, parse_maps
from procfs.parse.namespaces import parse_ns_link
from procfs.registers import decode_registers
from procfs.siginfo import decode_siginfo
from procfs.wait import WaitKind, decode_wait_status

HUGE = b"9" * 5000  # past int()'s 4300-digit limit: a bare ValueError before the fixes
ANON = b"7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n"


@pytest.mark.parametrize("status", [2**64 - 1, 0xFFFFFFFF, 1 << 32, 0x1000000, -1, -(2**63)])
def test_wait_status_outside_the_kernels_24_bits_is_a_parse_error(status):
    # was OverflowError from os.WIFEXITED (a C int) for anything past 2**31
    with pytest.raises(ParseError, match="wait status"):
        decode_wait_status(1, status)


def test_wait_status_largest_real_one_still_decodes():
    result = decode_wait_status(1, 0x80057F)  # PTRACE_EVENT_STOP | SIGTRAP: an interrupt stop
    assert result.kind == WaitKind.INTERRUPT_STOP


def test_ns_link_with_a_huge_inode_is_a_parse_error():
    # was ValueError (int() digit limit)
    with pytest.raises(ParseError, match="ns link"):
        parse_ns_link(b"net:[" + HUGE + b"]")
    assert parse_ns_link(b"net:[18446744073709551615]").inode == 2**64 - 1


def test_link_object_inode_with_a_huge_number_is_not_an_object():
    # was ValueError from the object_inode property
    assert parse_link(b"socket:[" + HUGE + b"]").object_inode is None
    assert parse_link(b"socket:[1234]").object_inode == (b"socket", 1234)


def test_maps_huge_inode_is_a_parse_error():
    # was ValueError (int() digit limit) out of parse_maps
    line = b"7f0000000000-7f0000001000 r--p 00000000 fe:00 " + HUGE + b"  /lib/x.so\n"
    with pytest.raises(ParseError, match="bad line"):
        parse_maps(ANON + line)


@pytest.mark.parametrize(
    "line",
    [
        b"17f00000000000000-17f00000000001000 r--p 00000000 00:00 0 ",  # 17 hex digits: not a u64
        b"7f0000000000-7f0000001000 r--p 100000000000000000 00:00 0 ",
        b"7f0000000000-7f0000001000 r--p 00000000 123456789:00 0 ",
        b"7f0000000000-7f0000001000 r--p 00000000 00:00 123456789012345678901 ",
    ],
)
def test_maps_numbers_wider_than_their_c_types_are_rejected(line):
    with pytest.raises(ParseError):
        parse_maps(line + b"\n")


def test_maps_garbage_between_good_lines_names_the_bad_line():
    with pytest.raises(ParseError, match="garbage"):
        parse_maps(ANON + b"garbage here\n" + ANON)
    with pytest.raises(ParseError, match="bad line"):
        parse_maps(ANON + b"7f0000000000-7f0000001000 rw-p\n")


def test_maps_blank_lines_are_skipped():
    assert len(parse_maps(b"\n" + ANON + b"\n\n" + ANON)) == 2


def test_maps_name_column_rule_for_long_and_short_prefixes():
    # short prefix: spaces up to column 73 are padding, later ones belong to the name
    short = b"400000-401000 r-xp 00000000 08:01 12 ".ljust(73) + b"  two leading\n"
    # a prefix past column 73: the name starts after the one separating space
    long = b"ffffffffff600000-ffffffffff601000 r-xp 0000000000001000 fe:00 123456789012 " \
        b"/x (deleted)\n"  # fmt: skip
    short_map, long_map = parse_maps(short + long)
    assert short_map.path == b"  two leading"
    assert long_map.path == b"/x" and long_map.deleted


def test_mapping_is_an_immutable_named_tuple_with_the_old_fields():
    (m,) = parse_maps(ANON)
    assert m == Mapping(0x7F0000000000, 0x7F0000001000, Perm.READ | Perm.WRITE, 0, 0, 0, 0, b"")
    assert m.deleted is False and m.build_id is None and m.size == 4096
    assert m.perms_text == "rw-p" and type(m.perms) is Perm
    assert hash(m) == hash(m._replace()) and m._replace(build_id=b"x").build_id == b"x"
    with pytest.raises(AttributeError):
        m.start = 0  # type: ignore[misc]


def test_register_and_siginfo_blobs_of_the_wrong_size_are_parse_errors():
    with pytest.raises(ParseError):
        decode_registers(b"\0" * 215, "x86_64")
    with pytest.raises(ParseError):
        decode_siginfo(b"\0" * 127)
