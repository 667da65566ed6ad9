"""debuginfod: Debian's server on loopback serving a directory; hits, 404s, negative cache."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.unit.symbols.programs import build_c, function_ranges, run
from unwinder.symbols import DebugFileLocator, ModuleSymbols
from unwinder.symbols.locate import read_file_build_id

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("debuginfod") is None,
                       reason="debuginfod not installed (scripts/bootstrap installs it)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(server URL, stripped binary, its debug file) with the debug file being served."""
    root = tmp_path_factory.mktemp("debuginfod")
    program = build_c(root / "src")
    serve = root / "serve"
    serve.mkdir()
    debug = serve / "inl.debug"
    run("objcopy", "--only-keep-debug", program, debug)
    stripped = root / "inl"
    run("strip", "-o", stripped, program)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEBUGINFOD_")}
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed below
    # debuginfod 0.188 binds every interface; requests only ever go to 127.0.0.1
    server = subprocess.Popen(["debuginfod", "-F", str(serve), "-d", str(root / "db.sqlite"),
                               "-p", str(port), "-t", "1", "-g", "0"], stdout=log,
                              stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    build_id = read_file_build_id(stripped)
    try:
        deadline = time.monotonic() + 30
        while True:  # wait until the scan has indexed the debug file
            try:
                with urllib.request.urlopen(f"{url}/buildid/{build_id.hex()}/debuginfo",
                                            timeout=2) as response:
                    response.read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"debuginfod did not serve: {(root / 'server.log').read_text()}")
                time.sleep(0.2)
        yield url, stripped, program
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_fetches_debug_file_and_symbolises(served, tmp_path: Path) -> None:
    url, stripped, program = served
    locator = DebugFileLocator(debug_dirs=[str(tmp_path / "none")], debuginfod_urls=[url],
                               cache_dir=tmp_path / "cache")
    with open(stripped, "rb") as handle:
        module = ModuleSymbols.load(ELFFile(handle), path=str(stripped), build_id=None,
                                    locator=locator)
        start, _ = function_ranges(program)["helper_static"]
        frames = module.describe(start + 1)
    build_id = read_file_build_id(stripped)
    assert module.debug_file == str(tmp_path / "cache" / build_id.hex() / "debuginfo")
    assert frames[-1].function == "helper_static"
    assert frames[-1].location and frames[-1].location.file.endswith("inl.c")
    requests = locator.debuginfod.requests
    assert locator.find(build_id=build_id, path=None, debuglink=None) is not None
    assert locator.debuginfod.requests == requests  # served from the cache


def test_unknown_build_id_is_negatively_cached(served, tmp_path: Path) -> None:
    url, _, _ = served
    locator = DebugFileLocator(debug_dirs=[str(tmp_path / "none")], debuginfod_urls=[url],
                               cache_dir=tmp_path / "cache")
    unknown = bytes.fromhex("00" * 19 + "01")
    assert locator.find(build_id=unknown, path=None, debuglink=None) is None
    assert locator.debuginfod.requests == 1
    assert (tmp_path / "cache" / unknown.hex() / ".notfound").exists()
    assert locator.find(build_id=unknown, path=None, debuglink=None) is None
    assert locator.debuginfod.requests == 1  # not asked again


def test_unreachable_server_is_not_negatively_cached(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    locator = DebugFileLocator(debug_dirs=[], debuginfod_urls=[f"http://127.0.0.1:{port}"],
                               cache_dir=tmp_path / "cache", timeout=1.0)
    unknown = bytes.fromhex("ab" * 20)
    assert locator.find(build_id=unknown, path=None, debuglink=None) is None
    assert not (tmp_path / "cache" / unknown.hex() / ".notfound").exists()
