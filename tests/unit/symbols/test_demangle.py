"""Demangling against binutils c++filt: C++ templates, Rust legacy and v0 from rustc."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.symbols.programs import INLINE_CXX, build_c
from unwinder.symbols import demangle
from unwinder.symbols.rustv0 import demangle_v0

RUST = """\
use std::collections::HashMap;
struct Wrapper<T>(T);
trait Speak { fn speak(&self) -> String; }
impl<T: std::fmt::Debug> Speak for Wrapper<T> {
    #[inline(never)] fn speak(&self) -> String { format!("{:?}", self.0) }
}
#[inline(never)] fn generic_thing<T: Clone>(x: &T, n: [u8; 4]) -> Vec<T> { vec![x.clone(); n.len()] }
fn main() {
    let mut m: HashMap<String, Vec<u32>> = HashMap::new();
    m.insert("a".into(), vec![1]);
    let f = |x: u32| x + 1;
    println!("{} {:?} {}", Wrapper(vec![1u8]).speak(), generic_thing(&String::from("s"), [0; 4]),
             f(m.len() as u32));
    let d: Box<dyn Fn(&str) -> usize> = Box::new(|s| s.len());
    println!("{}", d("xy"));
}
"""


def _cxxfilt(names: list[str]) -> list[str]:
    out = subprocess.run(["c++filt"], input="\n".join(names) + "\n", capture_output=True,
                         text=True, check=True).stdout
    return out.splitlines()


def _symbols(path: Path, prefix: str) -> list[str]:
    out = subprocess.run(["nm", "--format=posix", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return sorted({line.split()[0] for line in out.splitlines()
                   if line.split() and line.split()[0].startswith(prefix)})


def test_cxx_templates_match_cxxfilt(tmp_path: Path) -> None:
    exe = build_c(tmp_path, ("-O2", "-g"), compiler="g++", source=INLINE_CXX, suffix=".cc")
    names = [n for n in _symbols(exe, "_Z") if "@" not in n]
    assert len(names) > 8
    assert [demangle(n) for n in names] == _cxxfilt(names)
    assert any("geo::Box<double>" in demangle(n) for n in names)


def _rust_binary(tmp_path: Path, mangling: str) -> Path:
    if shutil.which("rustc") is None:
        pytest.skip("rustc not installed")
    src = tmp_path / "r.rs"
    src.write_text(RUST)
    exe = tmp_path / f"r-{mangling}"
    subprocess.run(["rustc", "-O", f"-Csymbol-mangling-version={mangling}", "-Zunstable-options"
                    if mangling == "legacy" else "-g", "-o", str(exe), str(src)],
                   check=True, capture_output=True, env={"RUSTC_BOOTSTRAP": "1",
                                                         "PATH": _path()})
    return exe


def _path() -> str:
    import os
    return os.environ.get("PATH", "/usr/bin:/bin")


def test_rust_v0_matches_cxxfilt_without_hashes(tmp_path: Path) -> None:
    names = _symbols(_rust_binary(tmp_path, "v0"), "_R")
    assert len(names) > 50
    # c++filt prints v0 verbosely: crate hashes and const types; rustfilt style has neither
    expected = [re.sub(r"(\d): [iu](?:8|16|32|64|128|size)\b", r"\1",
                       re.sub(r"\[[0-9a-f]+\]", "", n)) for n in _cxxfilt(names)]
    got = [demangle(n) for n in names]
    bad = [(n, e, g) for n, e, g in zip(names, expected, got, strict=True) if e != g]
    assert not bad, bad[:5]
    assert any("{closure#0}" in g for g in got)
    assert any("::<" in g for g in got)


def test_rust_legacy_matches_cxxfilt_without_hash(tmp_path: Path) -> None:
    names = [n for n in _symbols(_rust_binary(tmp_path, "legacy"), "_ZN")
             if re.search(r"17h[0-9a-f]{16}E", n)]
    assert len(names) > 10
    expected = [re.sub(r"::h[0-9a-f]{16}$", "", n) for n in _cxxfilt(names)]
    assert [demangle(n) for n in names] == expected


@pytest.mark.parametrize("name", [
    "main", "", "_Z", "_R", "_RNvC", "_RB_", "_RNvCsA" + "B" * 50,
    "_R" + "I" * 5000, "_ZZZZ", "_R\x00", "\udcff",
])
def test_garbage_comes_back_unchanged(name: str) -> None:
    assert demangle(name) == name


def test_v0_samples() -> None:
    assert demangle_v0("_RNvCs1234_7mycrate3foo") == "mycrate::foo"
    assert demangle_v0("_RNvNvCs1234_7mycrate3foo") is None  # trailing garbage: ident missing
