import struct

import pytest

from procfs.errors import ParseError
from procfs.parse.auxv import AT, parse_auxv
from procfs.parse.cmdline import cmdline_to_posix, parse_cmdline, parse_posix_cmdline, quote_posix
from procfs.parse.environ import parse_environ


def test_environ():
    env = parse_environ(b"A=1\0B=x=y\0NOEQ\0\0C=\0")
    assert env.complete and env.entries == (b"A=1", b"B=x=y", b"NOEQ", b"", b"C=")
    assert env.find(b"B") == b"x=y" and env.find(b"C") == b"" and env.find(b"NOEQ") is None
    assert (b"NOEQ", None) in env.items()


def test_environ_huge_and_truncated():
    big = b"".join(b"K%d=%s\0" % (i, b"v" * 1000) for i in range(2000))
    env = parse_environ(big)
    assert len(env.entries) == 2000 and env.find(b"K1999") == b"v" * 1000
    cut = parse_environ(big[:-10])
    assert not cut.complete and len(cut.entries) == 2000
    assert parse_environ(b"").entries == () and parse_environ(b"").complete


def test_cmdline():
    assert parse_cmdline(b"/bin/sleep\x00100\x00") == (b"/bin/sleep", b"100")
    assert parse_cmdline(b"a\0\0b\0\0\0") == (b"a", b"", b"b")
    assert parse_cmdline(b"proctitle: rewritten") == (b"proctitle: rewritten",)
    assert parse_cmdline(b"") == ()


QUOTED = [
    (b"/bin/foo", b"/bin/foo"),
    (b"a b", b"$'a b'"),
    (b"", b'""'),
    (b"it's", b"$'it\\'s'"),
    (b"x\ny", b"$'x\\ny'"),
    (b"\xff", b"$'\\377'"),
    (b"caf\xc3\xa9", b"caf\xc3\xa9"),
    (b"$HOME", b"$'$HOME'"),
    (b'say "hi"', b"$'say \"hi\"'"),
    (b"a\\b", b"$'a\\\\b'"),
    (b"tab\there", b"$'tab\\there'"),
    (b"\x01\x7f", b"$'\\001\\177'"),
    (b"--opt=*.c", b"$'--opt=*.c'"),
    (b"\xef\xb7\x90", b"$'\\357\\267\\220'"),  # U+FDD0, a noncharacter systemd escapes
]


@pytest.mark.parametrize(("arg", "quoted"), QUOTED)
def test_quote_posix_like_systemd(arg, quoted):
    assert quote_posix(arg) == quoted


def test_posix_cmdline_round_trip():
    args = tuple(arg for arg, _ in QUOTED)
    text = cmdline_to_posix(args)
    assert text == b" ".join(q for _, q in QUOTED)
    assert parse_posix_cmdline(text) == args


@pytest.mark.parametrize("text", [b"$'open", b"$'bad\\q'", b"$'\\xZZ'"])
def test_parse_posix_cmdline_malformed(text):
    with pytest.raises(ParseError):
        parse_posix_cmdline(text)


def _auxv(pairs, fmt="<QQ"):
    return b"".join(struct.pack(fmt, k, v) for k, v in pairs)


def test_auxv():
    auxv = parse_auxv(_auxv([(AT.PAGESZ, 4096), (AT.ENTRY, 0x401000), (AT.NULL, 0)]), 8, "little")
    assert auxv.complete and auxv.find(AT.PAGESZ) == 4096 and auxv.find(AT.ENTRY) == 0x401000
    assert auxv.find(AT.SYSINFO_EHDR) is None


def test_auxv_truncated_and_compat():
    data = _auxv([(AT.PAGESZ, 4096), (AT.HWCAP, 7)])
    cut = parse_auxv(data + b"\x01\x02\x03", 8, "little")
    assert not cut.complete and cut.entries == ((6, 4096), (16, 7))
    compat = parse_auxv(_auxv([(AT.PAGESZ, 4096), (0, 0)], "<II"), 4, "little")
    assert compat.complete and compat.find(AT.PAGESZ) == 4096
    assert parse_auxv(b"", 8).entries == ()
