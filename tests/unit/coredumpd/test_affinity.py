"""Which CPUs the reader of a core keeps when the dumping thread keeps its own."""

from __future__ import annotations

from coredumpd.affinity import split


def test_the_reader_keeps_every_other_cpu() -> None:
    assert split({0, 1}, 0) == {1}
    assert split({0, 1, 2, 3}, 2) == {0, 1, 3}


def test_nothing_to_split() -> None:
    assert split({0, 1}, None) is None
    assert split({3}, 3) is None  # no CPU would be left to us
    assert split({1, 2}, 5) == {1, 2}  # the dumper runs where we may not: we keep ours
