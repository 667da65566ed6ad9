"""Compressed sections (SHF_COMPRESSED zlib/zstd, .zdebug): byte fixtures, every error, and
a bomb that declares 100 bytes and inflates to 512 MiB (it must not be inflated)."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import zstandard

from unwinder.elfcompress import decompress_section, decompress_zdebug
from unwinder.errors import SectionError

PAYLOAD = bytes(range(256)) * 40


def test_zlib_zstd_zdebug() -> None:
    head64 = struct.pack("<IIQQ", 1, 0, len(PAYLOAD), 8)
    assert decompress_section(head64 + zlib.compress(PAYLOAD), elfclass=64, big_endian=False,
                              name="x") == PAYLOAD
    head64 = struct.pack("<IIQQ", 2, 0, len(PAYLOAD), 8)
    packed = zstandard.ZstdCompressor().compress(PAYLOAD)
    assert decompress_section(head64 + packed, elfclass=64, big_endian=False, name="x") == PAYLOAD
    head32 = struct.pack(">III", 1, len(PAYLOAD), 4)
    assert decompress_section(head32 + zlib.compress(PAYLOAD), elfclass=32, big_endian=True,
                              name="x") == PAYLOAD
    zdebug = b"ZLIB" + struct.pack(">Q", len(PAYLOAD)) + zlib.compress(PAYLOAD)
    assert decompress_zdebug(zdebug, name="x") == PAYLOAD


@pytest.mark.parametrize(
    "raw",
    [
        b"\x01\x00",  # truncated header
        struct.pack("<IIQQ", 3, 0, 10, 8) + b"x",  # unknown type
        struct.pack("<IIQQ", 1, 0, 10, 8) + b"garbage",  # corrupt zlib
        struct.pack("<IIQQ", 2, 0, 10, 8) + b"garbage",  # corrupt zstd
        struct.pack("<IIQQ", 1, 0, 2**40, 8) + zlib.compress(b"x"),  # absurd size
        struct.pack("<IIQQ", 1, 0, 100, 8) + zlib.compress(b"x"),  # less than declared
        struct.pack("<IIQQ", 1, 0, 100, 8) + zlib.compress(bytes(101)),  # more than declared
        struct.pack("<IIQQ", 2, 0, 100, 8) + zstandard.ZstdCompressor().compress(bytes(101)),
    ],
    ids=["truncated", "unknown", "bad zlib", "bad zstd", "absurd", "short", "long zlib",
         "long zstd"],
)
def test_errors(raw: bytes) -> None:
    with pytest.raises(SectionError):
        decompress_section(raw, elfclass=64, big_endian=False, name="x")


def test_zdebug_errors() -> None:
    with pytest.raises(SectionError):
        decompress_zdebug(b"ZLIX" + bytes(20), name="x")
    with pytest.raises(SectionError):
        decompress_zdebug(b"ZLIB" + struct.pack(">Q", 5) + zlib.compress(bytes(6)), name="x")


BOMB = """
import resource, struct, sys, zlib
import zstandard
from unwinder.elfcompress import decompress_section
from unwinder.errors import SectionError
kind = int(sys.argv[1])
packer = zlib.compressobj(9) if kind == 1 else zstandard.ZstdCompressor(level=19).compressobj()
zeros = bytes(1 << 20)
bomb = b"".join(packer.compress(zeros) for _ in range(512)) + packer.flush()
assert len(bomb) < 1 << 20
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    decompress_section(struct.pack("<IIQQ", kind, 0, 100, 8) + bomb, elfclass=64,
                       big_endian=False, name=".debug_info")
except SectionError as err:
    print(err)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.mark.parametrize("kind", [1, 2], ids=["zlib", "zstd"])
def test_a_bomb_is_not_inflated(kind: int) -> None:
    """In a fresh process, so its peak RSS says what inflating cost."""
    out = subprocess.run([sys.executable, "-c", BOMB, str(kind)], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[3])
    message, grown_kib = out.stdout.splitlines()
    assert "inflated to more than 100 bytes" in message
    assert int(grown_kib) < 32 << 10, f"inflating grew the peak RSS by {int(grown_kib) >> 10} MiB"
