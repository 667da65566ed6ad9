"""Rust v0 symbol demangling (RFC 2603), our own, printing as c++filt and rustc-demangle do.

Crate disambiguators (hashes) are omitted, generic arguments of value paths print as
``::<…>``, closures as ``{closure#N}``. Input is untrusted: recursion depth and output length
are capped, and anything malformed (or a newer const encoding) returns ``None``.
"""

from __future__ import annotations

_BASIC = {
    "a": "i8", "b": "bool", "c": "char", "d": "f64", "e": "str", "f": "f32", "h": "u8",
    "i": "isize", "j": "usize", "l": "i32", "m": "u32", "n": "i128", "o": "u128", "s": "i16",
    "t": "u16", "u": "()", "v": "...", "x": "i64", "y": "u64", "z": "!", "p": "_",
}
_SIGNED = set("anilsx")
_UNSIGNED = set("hjmoty")
MAX_DEPTH = 200
MAX_OUTPUT = 1 << 16


class _Invalid(Exception):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.pos = 0
        self.depth = 0
        self.bound_lifetimes = 0
        self.out: list[str] | None = []
        self.out_len = 0

    # -- input -------------------------------------------------------------
    def peek(self) -> str:
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def eat(self, ch: str) -> bool:
        if self.peek() == ch:
            self.pos += 1
            return True
        return False

    def next(self) -> str:
        if self.pos >= len(self.s):
            raise _Invalid
        ch = self.s[self.pos]
        self.pos += 1
        return ch

    def base62(self) -> int:
        if self.eat("_"):
            return 0
        value = 0
        while True:
            ch = self.next()
            if ch == "_":
                return value + 1
            if ch.isdigit():
                digit = ord(ch) - 48
            elif "a" <= ch <= "z":
                digit = ord(ch) - 87
            elif "A" <= ch <= "Z":
                digit = ord(ch) - 29
            else:
                raise _Invalid
            value = value * 62 + digit
            if value > 1 << 64:
                raise _Invalid

    def opt_integer62(self, tag: str) -> int:
        return self.base62() + 1 if self.eat(tag) else 0

    def disambiguator(self) -> int:
        return self.opt_integer62("s")

    def decimal(self) -> int:
        start = self.pos
        if self.eat("0"):
            return 0
        while self.peek().isdigit():
            self.pos += 1
        if start == self.pos or self.pos - start > 9:
            raise _Invalid
        return int(self.s[start:self.pos])

    def ident(self) -> str:
        punycode = self.eat("u")
        length = self.decimal()
        self.eat("_")
        raw = self.s[self.pos:self.pos + length]
        if len(raw) != length:
            raise _Invalid
        self.pos += length
        if not punycode:
            return raw
        basic, _, encoded = raw.rpartition("_")
        try:
            return (f"{basic}-{encoded}" if basic else encoded).encode("ascii").decode(
                "punycode")
        except (UnicodeError, ValueError) as err:
            raise _Invalid from err

    def backref(self) -> int:
        start = self.pos - 1
        target = self.base62()
        if target >= start:
            raise _Invalid
        return target

    # -- output ------------------------------------------------------------
    def emit(self, text: str) -> None:
        if self.out is not None:
            self.out.append(text)
            self.out_len += len(text)
            if self.out_len > MAX_OUTPUT:
                raise _Invalid

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Invalid

    def at(self, target: int, fn, *args) -> None:
        saved = self.pos
        self.pos = target
        try:
            fn(*args)
        finally:
            self.pos = saved

    def silently(self, fn, *args) -> None:
        saved = self.out
        self.out = None
        try:
            fn(*args)
        finally:
            self.out = saved

    # -- grammar -----------------------------------------------------------
    def path(self, in_value: bool) -> bool:
        """Print a path; returns ``True`` if it left a generic-argument list open."""
        self.enter()
        try:
            return self._path(in_value)
        finally:
            self.depth -= 1

    def _path(self, in_value: bool, open_generics: bool = False) -> bool:
        tag = self.next()
        if tag == "C":
            self.disambiguator()
            self.emit(self.ident())
        elif tag == "N":
            ns = self.next()
            self.path(in_value)
            dis = self.disambiguator()
            name = self.ident()
            if ns.isupper():
                self.emit("::{")
                self.emit({"C": "closure", "S": "shim"}.get(ns, ns))
                if name:
                    self.emit(":" + name)
                self.emit(f"#{dis}}}")
            elif ns.islower():
                if name:
                    self.emit("::" + name)
            else:
                raise _Invalid
        elif tag == "M":
            self.disambiguator()
            self.silently(self.path, False)
            self.emit("<")
            self.type()
            self.emit(">")
        elif tag == "X":
            self.disambiguator()
            self.silently(self.path, False)
            self.emit("<")
            self.type()
            self.emit(" as ")
            self.path(False)
            self.emit(">")
        elif tag == "Y":
            self.emit("<")
            self.type()
            self.emit(" as ")
            self.path(False)
            self.emit(">")
        elif tag == "I":
            self.path(in_value)
            if in_value:
                self.emit("::")
            self.emit("<")
            first = True
            while not self.eat("E"):
                if not first:
                    self.emit(", ")
                first = False
                self.generic_arg()
            if open_generics:
                return True
            self.emit(">")
        elif tag == "B":
            target = self.backref()
            result = [False]

            def follow() -> None:
                result[0] = self._path(in_value, open_generics)

            self.enter()
            try:
                self.at(target, follow)
            finally:
                self.depth -= 1
            return result[0]
        else:
            raise _Invalid
        return False

    def generic_arg(self) -> None:
        if self.eat("L"):
            self.lifetime(self.base62())
        elif self.eat("K"):
            self.const()
        else:
            self.type()

    def lifetime(self, index: int) -> None:
        if index == 0:
            self.emit("'_")
            return
        depth = self.bound_lifetimes - index
        if depth < 0:
            raise _Invalid
        self.emit("'" + chr(ord("a") + depth) if depth < 26 else f"'_{depth}")

    def binder(self) -> int:
        count = self.opt_integer62("G")
        if count > 1000:
            raise _Invalid
        if count:
            self.emit("for<")
            for i in range(count):
                if i:
                    self.emit(", ")
                self.bound_lifetimes += 1
                self.lifetime(1)
            self.emit("> ")
        return count

    def type(self) -> None:
        self.enter()
        try:
            self._type()
        finally:
            self.depth -= 1

    def _type(self) -> None:
        tag = self.next()
        if tag in _BASIC:
            self.emit(_BASIC[tag])
        elif tag in "RQ":
            self.emit("&")
            if self.eat("L"):
                index = self.base62()
                if index:
                    self.lifetime(index)
                    self.emit(" ")
            if tag == "Q":
                self.emit("mut ")
            self.type()
        elif tag == "P":
            self.emit("*const ")
            self.type()
        elif tag == "O":
            self.emit("*mut ")
            self.type()
        elif tag == "A":
            self.emit("[")
            self.type()
            self.emit("; ")
            self.const()
            self.emit("]")
        elif tag == "S":
            self.emit("[")
            self.type()
            self.emit("]")
        elif tag == "T":
            self.emit("(")
            count = 0
            while not self.eat("E"):
                if count:
                    self.emit(", ")
                self.type()
                count += 1
            self.emit(",)" if count == 1 else ")")
        elif tag == "F":
            saved = self.bound_lifetimes
            self.binder()
            if self.eat("U"):
                self.emit("unsafe ")
            if self.eat("K"):
                abi = "C" if self.eat("C") else self.ident().replace("_", "-")
                self.emit(f'extern "{abi}" ')
            self.emit("fn(")
            count = 0
            while not self.eat("E"):
                if count:
                    self.emit(", ")
                self.type()
                count += 1
            self.emit(")")
            if self.peek() == "u":
                self.pos += 1
            else:
                self.emit(" -> ")
                self.type()
            self.bound_lifetimes = saved
        elif tag == "D":
            saved = self.bound_lifetimes
            self.emit("dyn ")
            self.binder()
            count = 0
            while not self.eat("E"):
                if count:
                    self.emit(" + ")
                self.dyn_trait()
                count += 1
            self.bound_lifetimes = saved
            if not self.eat("L"):
                raise _Invalid
            index = self.base62()
            if index:
                self.emit(" + ")
                self.lifetime(index)
        elif tag == "B":
            target = self.backref()
            self.enter()
            try:
                self.at(target, self._type)
            finally:
                self.depth -= 1
        else:
            self.pos -= 1
            self.path(False)

    def dyn_trait(self) -> None:
        self.enter()
        try:
            open_ = self._path(False, open_generics=True)
            while self.eat("p"):
                self.emit(", " if open_ else "<")
                open_ = True
                self.emit(self.ident())
                self.emit(" = ")
                self.type()
            if open_:
                self.emit(">")
        finally:
            self.depth -= 1

    def const(self) -> None:
        self.enter()
        try:
            if self.eat("B"):
                self.at(self.backref(), self.const)
                return
            tag = self.next()
            if tag == "p":
                self.emit("_")
                return
            negative = tag in _SIGNED and self.eat("n")
            start = self.pos
            while self.peek() != "_":
                if self.next() not in "0123456789abcdef":
                    raise _Invalid
            digits = self.s[start:self.pos]
            self.pos += 1
            value = int(digits, 16) if digits else 0
            if tag in _SIGNED or tag in _UNSIGNED:
                self.emit(f"-{value}" if negative else str(value))
            elif tag == "b":
                if value > 1:
                    raise _Invalid
                self.emit("true" if value else "false")
            elif tag == "c":
                if value > 0x10FFFF:
                    raise _Invalid
                self.emit(repr(chr(value)))
            else:
                raise _Invalid
        finally:
            self.depth -= 1


def demangle_v0(name: str) -> str | None:
    """The demangled form of a Rust v0 symbol (``_R…``), ``None`` if it is not one."""
    if not name.startswith("_R"):
        return None
    body = name[2:].partition(".")[0]
    parser = _Parser(body)
    try:
        if parser.peek().isdigit():
            parser.decimal()  # encoding version
        parser.path(True)
        if parser.pos < len(body):  # instantiating crate
            parser.silently(parser.path, False)
        if parser.pos != len(body):
            return None
    except (_Invalid, RecursionError, IndexError, ValueError):
        return None
    # like c++filt, drop compiler suffixes (".0", ".llvm.1234")
    return "".join(parser.out or [])
