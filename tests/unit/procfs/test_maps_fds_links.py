import pytest

from procfs.errors import ParseError
from procfs.parse.fds import OpenFd, open_fds_to_text, parse_fdinfo, parse_open_fds
from procfs.parse.links import parse_link
from procfs.parse.maps import Perm, parse_maps
from procfs.parse.namespaces import parse_ns_link


def _line(start, end, perms, ino, name):
    prefix = b"%x-%x %s 00001000 08:01 %d " % (start, end, perms, ino)
    if not name:
        return prefix + b"\n"
    return prefix.ljust(73) + name + b"\n"


MAPS = (
    _line(0x400000, 0x401000, b"r-xp", 1234, b"/usr/bin/with space")
    + _line(0x600000, 0x601000, b"rw-p", 0, b"")
    + _line(0x7F0000000000, 0x7F0000001000, b"r--s", 99, b"/tmp/gone (deleted)")
    + _line(0x7F0000002000, 0x7F0000003000, b"rw-p", 0, b"[heap]")
    + _line(0x7F0000004000, 0x7F0000005000, b"r--p", 5, b"/tmp/new\\012line")
    + _line(0x7F0000006000, 0x7F0000007000, b"r--p", 6, b"  leading")
    + _line(0x7F0000008000, 0x7F0000009000, b"---p", 0, b"[anon:name (deleted)]")
    + b"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
)


def test_maps_shapes():
    maps = parse_maps(MAPS)
    assert len(maps) == 8
    exe, anon, gone, heap, newline, leading, named, vsyscall = maps
    assert exe.path == b"/usr/bin/with space" and exe.perms == Perm.READ | Perm.EXEC
    assert exe.offset == 0x1000 and (exe.dev_major, exe.dev_minor, exe.inode) == (8, 1, 1234)
    assert anon.path == b"" and anon.perms_text == "rw-p" and anon.size == 0x1000
    assert gone.path == b"/tmp/gone" and gone.deleted and gone.perms & Perm.SHARED
    assert heap.path == b"[heap]" and not heap.deleted
    assert newline.path == b"/tmp/new\nline"
    assert leading.path == b"  leading"
    assert named.path == b"[anon:name (deleted)]" and not named.deleted
    assert vsyscall.start == 0xFFFFFFFFFF600000 and vsyscall.path == b"[vsyscall]"
    assert vsyscall.perms == Perm.EXEC


def test_maps_truncated_and_empty():
    assert parse_maps(b"") == ()
    assert len(parse_maps(MAPS.rstrip(b"\n"))) == 8
    with pytest.raises(ParseError):
        parse_maps(MAPS[:30])


@pytest.mark.parametrize("bad", [b"zzzz\n", b"400000-401000 rwxq 0 08:01 1\n", b"\x00" * 50])
def test_maps_garbage(bad):
    with pytest.raises(ParseError):
        parse_maps(MAPS + bad)


FDINFO = b"pos:\t12\nflags:\t02100002\nmnt_id:\t15\nino:\t777\neventfd-count:\t5\n"


def test_fdinfo():
    info = parse_fdinfo(FDINFO)
    assert (info.pos, info.flags, info.mnt_id, info.ino) == (12, 0o2100002, 15, 777)
    assert (b"eventfd-count", b"5") in info.lines
    with pytest.raises(ParseError):
        parse_fdinfo(b"pos:\tnope\n")


def test_open_fds_systemd_layout():
    fds = (
        OpenFd(0, b"/dev/pts/23", parse_fdinfo(b"pos:\t0\nflags:\t0100002\n")),
        OpenFd(5, b"anon_inode:[eventfd]", parse_fdinfo(FDINFO)),
        OpenFd(9, b"socket:[123]", None),
    )
    text = open_fds_to_text(fds)
    assert text == (
        b"0:/dev/pts/23\npos:\t0\nflags:\t0100002\n\n"
        b"5:anon_inode:[eventfd]\n" + FDINFO + b"\n9:socket:[123]\n"
    )
    back = parse_open_fds(text)
    assert [(f.fd, f.target) for f in back] == [(0, b"/dev/pts/23"), (5, b"anon_inode:[eventfd]"),
                                                (9, b"socket:[123]")]  # fmt: skip
    assert back[1].info.ino == 777 and back[2].info is None
    with pytest.raises(ParseError):
        parse_open_fds(b"x:/dev/null\n")


def test_links():
    assert parse_link(b"/usr/bin/a (deleted)").deleted
    assert parse_link(b"/usr/bin/a (deleted)").path == b"/usr/bin/a"
    assert not parse_link(b"/usr/bin/a").deleted
    sock = parse_link(b"socket:[4242]")
    assert not sock.is_path and sock.object_inode == (b"socket", 4242)
    assert parse_link(b"anon_inode:[eventfd]").object_inode is None


def test_ns_link():
    ref = parse_ns_link(b"pid_for_children:[4026531836]")
    assert ref.kind == b"pid_for_children" and ref.inode == 4026531836
    with pytest.raises(ParseError):
        parse_ns_link(b"mnt:4026531836")
