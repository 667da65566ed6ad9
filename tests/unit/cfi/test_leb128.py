import pytest

from tests.unit.cfi.cfi_builder import sleb, uleb
from unwinder.errors import CfiError
from unwinder.leb128 import read_sleb128, read_uleb128


@pytest.mark.parametrize(
    "raw, value",
    [(b"\x02", 2), (b"\x7f", 127), (b"\x80\x01", 128), (b"\xe5\x8e\x26", 624485),
     (b"\x80\x80\x80\x00", 0), (b"\xff" * 9 + b"\x01", 2**64 - 1)],
)
def test_uleb128(raw, value):
    assert read_uleb128(raw + b"\xaa", 0, len(raw) + 1) == (value, len(raw))


@pytest.mark.parametrize(
    "raw, value",
    [(b"\x02", 2), (b"\x7e", -2), (b"\xff\x00", 127), (b"\x81\x7f", -127), (b"\x80\x01", 128),
     (b"\x80\x7f", -128), (b"\xc0\xbb\x78", -123456)],
)
def test_sleb128(raw, value):
    assert read_sleb128(b"\x00" + raw, 1, len(raw) + 1) == (value, len(raw) + 1)


@pytest.mark.parametrize("value", [0, 1, 63, 64, 127, 128, 2**32, 2**63 - 1])
def test_roundtrip(value):
    assert read_uleb128(uleb(value), 0, len(uleb(value)))[0] == value
    for signed in (value, -value - 1):
        raw = sleb(signed)
        assert read_sleb128(raw, 0, len(raw))[0] == signed


@pytest.mark.parametrize("reader", [read_uleb128, read_sleb128])
def test_truncated_and_overlong(reader):
    with pytest.raises(CfiError):
        reader(b"\x80\x80", 0, 2)
    with pytest.raises(CfiError):
        reader(b"\x80\x01", 0, 1)  # end bound respected even if bytes follow
    with pytest.raises(CfiError):
        reader(b"", 0, 0)
    with pytest.raises(CfiError):
        reader(b"\x80" * 40 + b"\x01", 0, 41)
