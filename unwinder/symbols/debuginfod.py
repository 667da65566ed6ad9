"""A debuginfod client: ``GET <url>/buildid/<hex>/debuginfo`` with a local cache.

Our own, on ``urllib``: timeouts on connect and every read plus an overall deadline, a size
cap, a build-id check of what was downloaded, an atomic write into
``<cache>/<hex>/debuginfo`` (elfutils' layout), and negative caching of "404 from every
server" for :attr:`DebuginfodClient.negative_ttl` seconds (elfutils' ``cache_miss_s``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from unwinder.elffile import ElfFile
from unwinder.errors import UnwindError
from unwinder.log import LazyLogger
from unwinder.symbols.cache import user_cache_dir
from unwinder.symbols.elfguard import guard
from unwinder.symbols.identity import find_build_id

log = LazyLogger(__name__)

#: refuse downloads larger than this
MAX_DOWNLOAD = 4 << 30
_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``$DEBUGINFOD_CACHE_PATH``, else ``$XDG_CACHE_HOME/coredumpd/debuginfod``."""
    env = os.environ.get("DEBUGINFOD_CACHE_PATH")
    if env:
        return Path(env)
    return user_cache_dir("debuginfod")


def urls_from_env() -> list[str]:
    """The space-separated server list in ``$DEBUGINFOD_URLS``."""
    return [u.rstrip("/") for u in os.environ.get("DEBUGINFOD_URLS", "").split() if u]


class DebuginfodClient:
    """Fetches debug files by build-id from a list of servers, through a cache directory."""

    def __init__(self, urls: list[str], cache_dir: Path, timeout: float = 5.0,
                 negative_ttl: float = 600.0) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.cache_dir = Path(cache_dir)
        self.timeout = timeout
        self.negative_ttl = negative_ttl
        #: the longest a whole download may take
        self.deadline = max(timeout * 12, 60.0)
        self.requests = 0

    def fetch_debuginfo(self, build_id: bytes) -> Path | None:
        """Path of the cached debug file for ``build_id``, downloading it if needed."""
        if not self.urls or not build_id:
            return None
        import urllib.error  # only when a server is configured

        hexid = build_id.hex()
        entry = self.cache_dir / hexid
        target = entry / "debuginfo"
        if target.is_file():
            return target
        miss = entry / ".notfound"
        try:
            if time.time() - miss.stat().st_mtime < self.negative_ttl:
                return None
        except OSError:
            pass
        all_404 = True
        for url in self.urls:
            try:
                if self._download(f"{url}/buildid/{hexid}/debuginfo", entry, target,
                                  build_id):
                    return target
            except urllib.error.HTTPError as err:
                if err.code != 404:
                    all_404 = False
                    log.warning("debuginfod %s: HTTP %s for %s, ignoring", url, err.code, hexid)
            except (OSError, urllib.error.URLError, ValueError, UnwindError) as err:
                all_404 = False
                log.warning("debuginfod %s: failed to fetch %s, ignoring: %s", url, hexid, err)
        if all_404:
            try:
                entry.mkdir(parents=True, exist_ok=True)
                miss.touch()
                os.utime(miss)
            except OSError as err:
                log.warning("failed to record debuginfod miss for %s, ignoring: %s", hexid, err)
        return None

    def _download(self, url: str, entry: Path, target: Path, build_id: bytes) -> bool:
        import tempfile
        import urllib.request  # http.client and ssl: only when a server is asked

        self.requests += 1
        started = time.monotonic()
        request = urllib.request.Request(url, headers={"User-Agent": "coredumpd"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            entry.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".debuginfo.", dir=entry)
            try:
                with os.fdopen(fd, "w+b") as out:
                    total = 0
                    while chunk := response.read(_CHUNK):
                        total += len(chunk)
                        if total > MAX_DOWNLOAD:
                            raise ValueError(f"larger than {MAX_DOWNLOAD} bytes")
                        if time.monotonic() - started > self.deadline:
                            raise TimeoutError(f"download took over {self.deadline:.0f} s")
                        out.write(chunk)
                    out.seek(0)
                    with guard(f"debuginfod file from {url}"):
                        got = find_build_id(ElfFile(out))
                if got != build_id:
                    log.warning("debuginfod %s: build-id %s does not match, ignoring",
                                url, got.hex() if got else None)
                    os.unlink(tmp)
                    return False
                os.replace(tmp, target)
                return True
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
